//! The servers' rows and leases on PostgreSQL.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::PgStorage;
use super::rows::{fence_arrays, int, micros_of, text};
use crate::storage::{Fence, ServerRow, ServerStore};
use crate::{JobId, Result};

impl ServerStore for PgStorage {
    async fn server_heartbeat(
        &self,
        server: &ServerRow,
        held: &[Fence],
        waiting: &[JobId],
        lease: std::time::Duration,
        offset: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<Fence>> {
        let (ids, tokens) = fence_arrays(held);
        let waiting: Vec<Uuid> = waiting.iter().map(JobId::as_uuid).collect();
        let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        // The lease runs from the database's clock (see the module docs of `storage`).
        let lease = micros_of(offset.checked_add(&lease).unwrap_or(chrono::Duration::MAX));
        let renewed: Vec<(Uuid, i64)> = sqlx::query_as(
            "WITH server AS ( \
                 INSERT INTO jobs_server (id, name, host, pid, workers, running, started_at, \
                     heartbeat_at, jobs, queues, shapes) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $13, $14, $15) \
                 ON CONFLICT (id) DO UPDATE SET running = excluded.running, \
                     heartbeat_at = excluded.heartbeat_at \
             ), mine AS ( \
                 SELECT job.id FROM jobs_job AS job \
                 JOIN UNNEST($9::uuid[], $10::int8[]) AS held (id, token) \
                     ON job.id = held.id AND job.token = held.token \
                 WHERE job.owner = $1 AND job.state IN ('Processing', 'Deleted') \
                 ORDER BY job.id FOR UPDATE OF job \
             ), renewed AS ( \
                 UPDATE jobs_job AS job \
                 SET lease_until = clock_timestamp() + $11 * interval '1 microsecond', \
                     ahead = job.id = ANY($12::uuid[]) \
                 FROM mine WHERE job.id = mine.id \
                 RETURNING job.id, job.token \
             ) \
             SELECT id, token FROM renewed",
        )
        .bind(&server.id)
        .bind(text(&server.name))
        .bind(text(&server.host))
        .bind(i64::from(server.pid))
        .bind(int(server.workers))
        .bind(int(server.running))
        .bind(server.started_at)
        .bind(now)
        .bind(ids)
        .bind(tokens)
        .bind(lease)
        .bind(waiting)
        .bind(text(
            &serde_json::to_string(&server.jobs).expect("names serialize"),
        ))
        // Names and numbers always serialize; NULL would only say "not declared".
        .bind(serde_json::to_string(&server.queues).ok())
        .bind(text(
            &serde_json::to_string(&server.shapes).expect("shapes serialize"),
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut lost: HashSet<Fence> = held.iter().copied().collect();
        for (id, token) in renewed {
            lost.remove(&Fence {
                id: JobId::from(id),
                token,
            });
        }
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
                 WHERE id <> $1 AND heartbeat_at >= $2 \
                     AND (jobs IS NULL OR $3 IN (SELECT json_array_elements_text(jobs::json))) \
                     AND (shapes IS NULL OR (shapes::json ->> $3) IS DISTINCT FROM $4))",
        )
        .bind(server)
        .bind(alive_after)
        .bind(text(name))
        .bind(text(shape))
        .fetch_one(&self.pool)
        .await?;
        Ok(other)
    }

    async fn server_remove(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM jobs_server WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn servers_prune(&self, dead_before: DateTime<Utc>) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM jobs_server WHERE heartbeat_at < $1")
                .bind(dead_before)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }
}
