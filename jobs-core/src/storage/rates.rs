//! Rate limits: the starts each rate-limited scope recorded, kept in `jobs_rate_start`
//! (SQLite migration 23, PostgreSQL 28), and the contract of their trait. A claim with
//! a [`RateCap`](super::RateCap) records and counts them itself
//! ([`LifecycleStore::jobs_claim`](super::LifecycleStore::jobs_claim)); this trait reads
//! them, for the server's wait and the dashboard.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::RateWindow;
use crate::{Rate, Result};

/// The starts of rate-limited scopes.
pub(crate) trait RateStore: Send + Sync + 'static {
    /// The starts recorded under `scope` after `since` (at or before it are left out):
    /// their sum, and the time of the earliest claim among them (`None` for none).
    fn rate_window(
        &self,
        scope: &str,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<RateWindow>> + Send;
}

/// The scope a queue's rate is recorded under.
pub(crate) fn queue_scope(queue: &str) -> String {
    format!("queue:{queue}")
}

/// How long a start counts against `rate`: its period, plus the time a claimed job may
/// take to begin (a tenth of the period, at most 100 ms). A claim's starts are recorded
/// at the claim's time, and its jobs begin a little later, each after its own delay:
/// counted for the period alone, the last job of one claim and the first of a claim
/// one period later could begin within one period of each other, one over the rate.
pub(crate) fn counted_for(rate: Rate) -> chrono::Duration {
    let slack = (rate.period / 10).min(START_SLACK);
    chrono::Duration::from_std(rate.period + slack).unwrap_or(chrono::Duration::MAX)
}

/// The most a start's time is counted beyond its rate's period.
const START_SLACK: std::time::Duration = std::time::Duration::from_millis(100);
