//! The servers' rows and leases on PostgreSQL.

use chrono::{DateTime, Utc};

use super::PgStorage;
use super::rows::{int, text};
use crate::Result;
use crate::storage::{ServerRow, ServerStore};

impl ServerStore for PgStorage {
    async fn server_heartbeat(
        &self,
        server: &ServerRow,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "WITH server AS ( \
                 INSERT INTO jobs_server (id, name, host, pid, workers, running, started_at, \
                     heartbeat_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (id) DO UPDATE SET running = excluded.running, \
                     heartbeat_at = excluded.heartbeat_at \
             ), mine AS ( \
                 SELECT id FROM jobs_job WHERE owner = $1 AND state = 'Processing' \
                 ORDER BY id FOR UPDATE \
             ) \
             UPDATE jobs_job AS job SET lease_until = $9 FROM mine WHERE job.id = mine.id",
        )
        .bind(&server.id)
        .bind(text(&server.name))
        .bind(text(&server.host))
        .bind(i64::from(server.pid))
        .bind(int(server.workers))
        .bind(int(server.running))
        .bind(server.started_at)
        .bind(now)
        .bind(lease_until)
        .execute(&self.pool)
        .await?;
        Ok(())
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
