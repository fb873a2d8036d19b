//! The storage of batches (`Jobs::batch`) and the contract of their trait. Its own file
//! because `mod.rs` holds the other concerns' contracts.
//!
//! A batch is a `jobs_batch` row (its total, the counts `remaining` and `failed`, the
//! ids of its fan-in jobs) and its members, the jobs whose `batch_id` names it. The
//! fan-in jobs are stored `Awaiting` with the members, in one transaction. What moves
//! them is a trigger on `jobs_job` (SQLite migration 20, PostgreSQL 23), so every path
//! that changes a member's state (a result, a delete, a requeue, maintenance, a server
//! of an older release) keeps the counts and releases the fan-in: when a member's state
//! change leaves no member unended, the `then` job moves to `Enqueued` if none failed
//! (its `on_failure` job to `Deleted`), else the `on_failure` job moves to `Enqueued`
//! and the `then` job waits until the failed members are requeued and succeed (or are
//! deleted). Each release has a history row; PostgreSQL notifies the wake-up channel.
//!
//! Exactly once: the release moves only an `Awaiting` row, and the counts change in an
//! `UPDATE` of the batch row, which on PostgreSQL waits for the row lock of a member's
//! transaction that changed it first and then reads the row as that one committed it
//! (read committed); so of the last two members ending at once, only the second sees
//! no member left. SQLite has one writer.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::NewJob;
use super::rows::{StoredRow, state};
use crate::{JobId, JobState, Result};

/// A batch to store (see [`BatchStore::batch_insert`]).
#[derive(Debug, Clone)]
pub(crate) struct NewBatch {
    pub(crate) id: JobId,
    pub(crate) label: Option<String>,
    pub(crate) created_at: DateTime<Utc>,
    /// The job that runs when every member ended and none failed.
    pub(crate) then_id: Option<JobId>,
    /// The job that runs when every member ended and some failed.
    pub(crate) on_failure_id: Option<JobId>,
}

/// A batch as stored, with its members counted by state.
#[derive(Debug, Clone)]
pub(crate) struct StoredBatch {
    pub(crate) label: Option<String>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) total: u64,
    pub(crate) then_id: Option<JobId>,
    pub(crate) on_failure_id: Option<JobId>,
    /// The members' states and how many are in each (pruned members are not counted).
    pub(crate) by_state: Vec<(JobState, u64)>,
}

/// One member of a batch: its id, name, state and stored result (JSON text).
#[derive(Debug, Clone)]
pub(crate) struct BatchMember {
    pub(crate) id: JobId,
    pub(crate) name: String,
    pub(crate) state: JobState,
    pub(crate) result: Option<String>,
}

/// Batches: their rows, their members and their fan-in jobs.
pub(crate) trait BatchStore: Send + Sync + 'static {
    /// In one transaction: stores the batch row (its total and `remaining` the number
    /// of `members`, none failed), then the `members` (each with `batch_id` set, in a
    /// state that is not ended), then the `fan_in` jobs (`Awaiting`, or `Enqueued` for
    /// a batch without members), as [`LifecycleStore::jobs_insert`] does. PostgreSQL
    /// notifies the wake-up channel on commit.
    ///
    /// [`LifecycleStore::jobs_insert`]: super::LifecycleStore::jobs_insert
    fn batch_insert(
        &self,
        batch: &NewBatch,
        members: &[NewJob],
        fan_in: &[NewJob],
    ) -> impl Future<Output = Result<()>> + Send;

    /// The batch row and its members counted by state; `None` when there is no such
    /// batch.
    fn batch_get(&self, id: JobId) -> impl Future<Output = Result<Option<StoredBatch>>> + Send;

    /// Up to `limit` members of the batch in id order, those after `after` when set
    /// (keyset paging), with their name, state and stored result.
    fn batch_members(
        &self,
        id: JobId,
        after: Option<JobId>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<BatchMember>>> + Send;

    /// The batch whose `then` or `on_failure` job is `fan_in`, if any.
    fn batch_of_fan_in(&self, fan_in: JobId) -> impl Future<Output = Result<Option<JobId>>> + Send;

    /// Before the failed members of a batch are requeued, in one transaction: puts its
    /// `then` job back to `Awaiting` when it is `Failed` or `Deleted`, and its
    /// `on_failure` job when it ended (`Succeeded`, `Failed`, `Deleted`) while members
    /// are failed, each with a history row (`Awaiting`, at `now`); then, when no member
    /// is left unended and none failed, moves an awaiting `then` job to `Enqueued` (the
    /// release no member's change will make). Returns whether the batch exists.
    fn batch_rearm(
        &self,
        id: JobId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool>> + Send;
}

/// The batch row's columns (`label`, `created_at`, `total`, `then_id`,
/// `on_failure_id`) and the members' counts by state, as read by each backend.
pub(crate) fn stored_batch(
    row: &impl StoredRow,
    by_state: Vec<(JobState, u64)>,
) -> Result<StoredBatch> {
    let total: i64 = row.column("total")?;
    Ok(StoredBatch {
        label: row.column("label")?,
        created_at: row.time("created_at")?,
        total: u64::try_from(total).unwrap_or(0),
        then_id: row.job_id_opt("then_id")?,
        on_failure_id: row.job_id_opt("on_failure_id")?,
        by_state,
    })
}

/// One row of a count by state (`state`, `n`).
pub(crate) fn state_count(row: &impl StoredRow) -> Result<(JobState, u64)> {
    let n: i64 = row.column("n")?;
    Ok((state(row, "state")?, u64::try_from(n).unwrap_or(0)))
}

/// One member's row (`id`, `name`, `state`, `result` as JSON text).
pub(crate) fn batch_member(row: &impl StoredRow) -> Result<BatchMember> {
    Ok(BatchMember {
        id: row.job_id("id")?,
        name: row.column("name")?,
        state: state(row, "state")?,
        result: row.column("result")?,
    })
}
