//! Rate limits: the starts each rate-limited scope recorded, kept in `jobs_rate_start`
//! (SQLite migration 23, PostgreSQL 28), and the contract of their trait. A claim with
//! a [`RateCap`](super::RateCap) records and counts them itself
//! ([`LifecycleStore::jobs_claim`](super::LifecycleStore::jobs_claim)); this trait reads
//! them, for the server's wait and the dashboard.
//!
//! A concurrency key's rate (`#[job(concurrency_key = "…", rate = "10/1m")]`) is stored
//! on each of its jobs (`rate_count`, `rate_window_ms`: SQLite migration 25, PostgreSQL
//! 31) and counted under the scope `key:<concurrency_key>` by the keyed claim, beside
//! the key's running jobs.

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

/// The scope a concurrency key's rate is recorded under (the claim writes it in SQL as
/// `'key:' || concurrency_key`).
#[cfg(test)]
pub(crate) fn key_scope(key: &str) -> String {
    format!("key:{key}")
}

/// What a keyed job stores as its rate's window (`rate_window_ms`): [`counted_for`] in
/// whole milliseconds, rounded up so that the stored window never counts less.
pub(crate) fn window_ms(rate: Rate) -> i64 {
    let window = counted_for(rate);
    let micros = u64::try_from(window.num_microseconds().unwrap_or(i64::MAX)).unwrap_or(0);
    i64::try_from(micros.div_ceil(1000)).unwrap_or(i64::MAX)
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
