//! The starts of rate-limited scopes on PostgreSQL (the claim records them: `claim.rs`).

use chrono::{DateTime, Utc};

use super::PgStorage;
use crate::Result;
use crate::storage::{RateStore, RateWindow};

impl RateStore for PgStorage {
    async fn rate_window(&self, scope: &str, since: DateTime<Utc>) -> Result<RateWindow> {
        let (started, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
            "SELECT coalesce(sum(starts), 0)::bigint, min(started_at) FROM jobs_rate_start \
             WHERE scope = $1 AND started_at > $2",
        )
        .bind(scope)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(RateWindow {
            started: u64::try_from(started).unwrap_or(0),
            oldest,
        })
    }
}
