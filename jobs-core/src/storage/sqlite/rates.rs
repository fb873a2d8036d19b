//! The starts of rate-limited scopes on SQLite (the claim records them: `claim.rs`).

use chrono::{DateTime, Utc};

use super::SqliteStorage;
use super::rows::{from_micros, micros};
use crate::Result;
use crate::storage::{RateStore, RateWindow};

impl RateStore for SqliteStorage {
    async fn rate_window(&self, scope: &str, since: DateTime<Utc>) -> Result<RateWindow> {
        let (started, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT coalesce(sum(starts), 0), min(started_at) FROM jobs_rate_start \
             WHERE scope = ? AND started_at > ?",
        )
        .bind(scope)
        .bind(micros(since))
        .fetch_one(&self.reader)
        .await?;
        Ok(RateWindow {
            started: u64::try_from(started).unwrap_or(0),
            oldest: oldest.map(from_micros),
        })
    }
}
