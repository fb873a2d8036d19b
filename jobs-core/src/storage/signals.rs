//! The storage of events sent to jobs (`Jobs::send_event`, `ctx.wait_for_event`), kept
//! as *signals* in `jobs_signal` (`jobs_event` holds the history rows), and the contract
//! of their trait. Its own file because `mod.rs` holds the other concerns' contracts.
//!
//! A job waiting for an event is `Scheduled` at its deadline with the event's name and
//! key in `wait_name` and `wait_key`, written by [`LifecycleStore::jobs_complete`] for a
//! [`Outcome::Sleeping`] with a `wait` (and cleared by every other completion). What
//! ends a wait is recorded as the job's outcome step ([`EventWait::outcome_step`]), so
//! every later run of the job reads the same.
//!
//! No lost wake-up: a send stores its signal and resumes the waiting jobs in one
//! transaction, and the completion that makes a job wait looks for a stored signal in
//! the transaction that stores the wait; the two are serialized per name and key
//! (SQLite: the write lock, taken at `BEGIN`; PostgreSQL: a transaction-scoped advisory
//! lock on a hash of name and key, taken first by both).
//!
//! [`LifecycleStore::jobs_complete`]: super::LifecycleStore::jobs_complete
//! [`Outcome::Sleeping`]: super::Outcome::Sleeping

use std::future::Future;

use chrono::{DateTime, Utc};

use super::{EventWait, Fence, WaitState};
use crate::Result;

/// Events sent to jobs, and the jobs' waits for them.
pub(crate) trait SignalStore: Send + Sync + 'static {
    /// In one transaction: stores the event `wait` names with `payload` (JSON text) sent
    /// at `now`, then resumes every job waiting for it: each job `Scheduled` with that
    /// `wait_name` and `wait_key` gets the outcome step `{"event": payload}` of the
    /// earliest event of that name and key sent at or after `since` (kept when one is
    /// stored already), moves to `Enqueued` with `run_at = updated_at = now`, its wait
    /// cleared, and a history row (`Enqueued`, its attempt, no server, a message naming
    /// the event). Returns how many jobs it resumed. PostgreSQL notifies the wake-up
    /// channel when it resumed any.
    fn signal_send(
        &self,
        wait: &EventWait,
        payload: &str,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// In one transaction, for a running job that reached a wait: when the wait's
    /// outcome step is stored, answers [`WaitState::Ended`] with it. Otherwise, only
    /// while the job is `Processing` under the claim `job`, stores the deadline step
    /// (`now + timeout`, as JSON) when it is missing, then records as the outcome step
    /// the earliest event of that name and key sent at or after `since`
    /// (`{"event": payload}`), or, without one and once the deadline is at or before
    /// `now`, `"timeout"`, and answers `Ended` with it. Else (or when the claim is not
    /// held) it answers [`WaitState::Pending`] with the deadline (stored, or `now +
    /// timeout`).
    fn signal_wait(
        &self,
        job: Fence,
        wait: &EventWait,
        timeout: chrono::Duration,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<WaitState>> + Send;

    /// Deletes up to `limit` events sent before `before` (oldest first); returns how many.
    fn signals_prune(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<u64>> + Send;
}

/// The earliest time an event may have been sent to count at `now`: events are kept
/// for [`crate::EVENT_RETENTION`].
pub(crate) fn kept_since(now: DateTime<Utc>) -> DateTime<Utc> {
    chrono::Duration::from_std(crate::EVENT_RETENTION)
        .ok()
        .and_then(|kept| now.checked_sub_signed(kept))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}
