//! The servers' rows and leases on SQLite.

use chrono::{DateTime, Utc};

use super::rows::micros;
use super::{SqliteStorage, begin};
use crate::Result;
use crate::storage::{ServerRow, ServerStore};

impl ServerStore for SqliteStorage {
    async fn server_heartbeat(
        &self,
        server: &ServerRow,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<()> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        sqlx::query(
            "INSERT INTO jobs_server (id, name, host, pid, workers, running, started_at, heartbeat_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
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
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE jobs_job SET lease_until = ?2 WHERE owner = ?1 AND state = 'Processing'",
        )
        .bind(&server.id)
        .bind(micros(lease_until))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
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
