//! The servers' rows and leases on SQLite.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::lifecycle::{fence_rows, fences_json, ids_json};
use super::rows::micros;
use super::{SqliteStorage, begin};
use crate::storage::rows::{Column, StoredRow};
use crate::storage::{Fence, ServerRow, ServerStore};
use crate::{JobId, Result};

impl ServerStore for SqliteStorage {
    async fn server_heartbeat(
        &self,
        server: &ServerRow,
        held: &[Fence],
        waiting: &[JobId],
        lease: std::time::Duration,
        _offset: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<Fence>> {
        let lease_until = now
            .checked_add_signed(chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        sqlx::query(
            "INSERT INTO jobs_server (id, name, host, pid, workers, running, started_at, heartbeat_at, \
                 jobs, queues, shapes) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
             ON CONFLICT (id) DO UPDATE SET running = excluded.running, \
                 heartbeat_at = excluded.heartbeat_at",
        )
        .bind(&server.id)
        .bind(&server.name)
        .bind(&server.host)
        .bind(i64::from(server.pid))
        .bind(i64::from(server.workers))
        .bind(i64::from(server.running))
        .bind(micros(server.started_at))
        .bind(micros(now))
        .bind(serde_json::to_string(&server.jobs).expect("names serialize"))
        // Names and numbers always serialize; NULL would only say "not declared".
        .bind(serde_json::to_string(&server.queues).ok())
        .bind(serde_json::to_string(&server.shapes).expect("shapes serialize"))
        .execute(&mut *tx)
        .await?;
        let mut lost: HashSet<Fence> = held.iter().copied().collect();
        if !held.is_empty() {
            let renewed = sqlx::query(&format!(
                "UPDATE jobs_job SET lease_until = ?2, \
                     ahead = id IN (SELECT value FROM json_each(?4)) \
                 WHERE owner = ?1 AND state IN ('Processing', 'Deleted') \
                     AND (id, token) IN ({}) \
                 RETURNING id, token",
                fence_rows("?3")
            ))
            .bind(&server.id)
            .bind(micros(lease_until))
            .bind(fences_json(held))
            .bind(ids_json(waiting))
            .fetch_all(&mut *tx)
            .await?;
            for row in &renewed {
                lost.remove(&Fence {
                    id: row.job_id("id")?,
                    token: row.column("token")?,
                });
            }
        }
        tx.commit().await?;
        Ok(lost.into_iter().collect())
    }

    async fn servers_other_shape(
        &self,
        name: &str,
        shape: &str,
        server: &str,
        alive_after: DateTime<Utc>,
    ) -> Result<bool> {
        let other: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM jobs_server \
                 WHERE id <> ?1 AND heartbeat_at >= ?2 \
                     AND (jobs IS NULL OR EXISTS (SELECT 1 FROM json_each(jobs) WHERE value = ?3)) \
                     AND (shapes IS NULL OR NOT EXISTS \
                         (SELECT 1 FROM json_each(shapes) WHERE key = ?3 AND value = ?4)))",
        )
        .bind(server)
        .bind(micros(alive_after))
        .bind(name)
        .bind(shape)
        .fetch_one(&self.reader)
        .await?;
        Ok(other)
    }

    async fn server_remove(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM jobs_server WHERE id = ?")
            .bind(id)
            .execute(&mut *self.writer.lock().await?)
            .await?;
        Ok(())
    }

    async fn servers_prune(&self, dead_before: DateTime<Utc>) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM jobs_server WHERE heartbeat_at < ?")
                .bind(micros(dead_before))
                .execute(&mut *self.writer.lock().await?)
                .await?
                .rows_affected(),
        )
    }
}
