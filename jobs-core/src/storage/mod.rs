//! Storage backends. Every backend implements [`Storage`] with the same behaviour, which
//! the conformance suite in the workspace's `tests/` checks against each of them.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::record::{ErrorInfo, JobInfo, JobQuery, JobSummary, ServerInfo, ThroughputPoint};
use crate::recurring::{NewRecurring, RecurringInfo};
use crate::{Failure, JobId, JobState, Result};

#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

mod migrations;

#[cfg(test)]
mod conformance;

/// A job to insert.
#[derive(Debug, Clone)]
pub(crate) struct NewJob {
    pub(crate) id: JobId,
    pub(crate) name: String,
    pub(crate) display_name: String,
    pub(crate) payload: String,
    /// `Enqueued` or `Scheduled`.
    pub(crate) state: JobState,
    pub(crate) queue: String,
    pub(crate) priority: i32,
    pub(crate) run_at: DateTime<Utc>,
    pub(crate) max_retries: Option<u32>,
    pub(crate) created_at: DateTime<Utc>,
    /// The recurring job this is a run of.
    pub(crate) recurring_id: Option<String>,
    /// For a continuation (state `Awaiting`): the job it waits for.
    pub(crate) parent_id: Option<JobId>,
    /// A continuation that runs when its parent fails for good, not when it succeeds.
    pub(crate) on_failure: bool,
    pub(crate) labels: Vec<String>,
    /// The id was made by [`JobId::new`] for this insert, not given or derived from a
    /// key, so it cannot be stored already: an insert of only such jobs skips the
    /// check for an existing id (on PostgreSQL a speculative insert per row).
    pub(crate) fresh_id: bool,
}

impl NewJob {
    /// The labels as stored: a JSON array.
    pub(crate) fn labels_json(&self) -> String {
        serde_json::to_string(&self.labels).expect("a list of strings serializes")
    }
}

/// Which queues a claim takes jobs from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum QueueSelector<'a> {
    /// Every queue.
    All,
    /// Only this one (a queue with a concurrency limit).
    Only(&'a str),
    /// Every queue but these (the limited ones, claimed separately).
    AllExcept(&'a [String]),
}

/// A line a job logged.
#[derive(Debug, Clone)]
pub(crate) struct LogLine {
    pub(crate) job_id: JobId,
    pub(crate) at: DateTime<Utc>,
    pub(crate) attempt: u32,
    pub(crate) level: crate::record::LogLevel,
    pub(crate) message: String,
}

/// A job's latest progress.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProgressUpdate {
    pub(crate) job_id: JobId,
    pub(crate) done: u64,
    pub(crate) total: u64,
}

/// What a server asks for when it claims.
#[derive(Debug, Clone)]
pub(crate) struct ClaimRequest<'a> {
    pub(crate) owner: &'a str,
    pub(crate) limit: u32,
    pub(crate) now: DateTime<Utc>,
    pub(crate) lease_until: DateTime<Utc>,
    pub(crate) queues: QueueSelector<'a>,
}

/// A job a server claimed: moved to `Processing`, owned by it, attempt counted.
#[derive(Debug, Clone)]
pub(crate) struct ClaimedJob {
    pub(crate) id: JobId,
    pub(crate) name: String,
    pub(crate) payload: String,
    pub(crate) attempt: u32,
    pub(crate) max_retries: Option<u32>,
    pub(crate) queue: String,
    /// When it became due: claim time minus this is how long it waited.
    pub(crate) run_at: DateTime<Utc>,
}

/// How an attempt ended, reported by the server that ran it (or rescued it).
#[derive(Debug, Clone)]
pub(crate) struct Completion {
    pub(crate) id: JobId,
    /// The fence: only the owner of this attempt may finish it.
    pub(crate) owner: String,
    pub(crate) attempt: u32,
    pub(crate) outcome: Outcome,
    pub(crate) at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Succeeded,
    /// Failed; run again at `at`.
    Retry {
        at: DateTime<Utc>,
        failure: Failure,
    },
    /// Failed for good.
    Failed {
        failure: Failure,
    },
}

impl Outcome {
    /// The state the job moves to, when its retry runs, and the failure if any.
    pub(crate) fn ending(&self) -> (JobState, Option<DateTime<Utc>>, Option<&Failure>) {
        match self {
            Outcome::Succeeded => (JobState::Succeeded, None, None),
            Outcome::Retry { at, failure } => (JobState::Scheduled, Some(*at), Some(failure)),
            Outcome::Failed { failure } => (JobState::Failed, None, Some(failure)),
        }
    }
}

/// A `Processing` job whose lease ran out: its server stopped heartbeating.
#[derive(Debug, Clone)]
pub(crate) struct ExpiredJob {
    pub(crate) id: JobId,
    pub(crate) owner: String,
    pub(crate) attempt: u32,
    pub(crate) max_retries: Option<u32>,
}

/// A server's row in the servers table.
#[derive(Debug, Clone)]
pub(crate) struct ServerRow {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) host: String,
    pub(crate) pid: u32,
    pub(crate) workers: u32,
    pub(crate) running: u32,
    pub(crate) started_at: DateTime<Utc>,
}

/// One scheduler's attempt to fire the due tick(s) of a recurring job.
#[derive(Debug, Clone)]
pub(crate) struct FireRequest<'a> {
    pub(crate) id: &'a str,
    /// The compare-and-set: fire only if `next_run_at` still has this value.
    pub(crate) expected_next: DateTime<Utc>,
    /// The new `next_run_at`; `None` disables a schedule without future ticks.
    pub(crate) next: Option<DateTime<Utc>>,
    pub(crate) runs: &'a [NewJob],
    pub(crate) allow_overlap: bool,
    pub(crate) now: DateTime<Utc>,
}

/// What came of a [`FireRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fired {
    /// The runs were created (none, if the plan had none).
    Created,
    /// The previous run is still active; the tick advanced without a run.
    SkippedOverlap,
    /// Another scheduler fired this tick first; nothing changed.
    Lost,
}

/// The operations the client and the server need from a database.
///
/// Names are noun-then-verb. Every write that finishes a job is fenced by owner and
/// attempt, so a server that lost its lease can never overwrite a newer attempt, and
/// every maintenance step is idempotent, so two servers doing it at once is harmless.
pub(crate) trait Storage: Send + Sync + 'static {
    /// Brings the schema up to date; safe to call from many processes at once.
    fn migrate(&self) -> impl Future<Output = Result<()>> + Send;

    /// Inserts jobs in one transaction; an id that exists already is skipped (dedupe).
    fn jobs_insert(&self, jobs: &[NewJob]) -> impl Future<Output = Result<()>> + Send;

    /// One job with its history.
    fn job_get(&self, id: JobId) -> impl Future<Output = Result<Option<JobInfo>>> + Send;

    /// Marks a job `Deleted` (unless it is already), and its awaiting continuations
    /// with it; false when there is no such job. A running job keeps its owner, which
    /// learns of the deletion and stops the attempt.
    fn job_delete(
        &self,
        id: JobId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// A page of jobs, newest id first.
    fn jobs_list(&self, query: &JobQuery) -> impl Future<Output = Result<Vec<JobSummary>>> + Send;

    /// Moves a job that is not running (nor awaiting a parent) back to `Enqueued` to run
    /// now, its attempts counted from zero again; false when there is no such job.
    fn job_requeue(
        &self,
        id: JobId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// [`Storage::job_requeue`] for every job matching the query's filters.
    fn jobs_requeue_matching(
        &self,
        query: &JobQuery,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// [`Storage::job_delete`] for every job matching the query's filters.
    fn jobs_delete_matching(
        &self,
        query: &JobQuery,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Finished attempts per minute since `since`, oldest first (minutes without any
    /// are left out).
    fn jobs_throughput(
        &self,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<ThroughputPoint>>> + Send;

    /// Every server row, by name.
    fn servers_list(&self) -> impl Future<Output = Result<Vec<ServerInfo>>> + Send;

    /// Counts of jobs by state.
    fn jobs_count(&self) -> impl Future<Output = Result<Vec<(JobState, u64)>>> + Send;

    /// Claims up to `limit` runnable jobs (`Enqueued`, or `Scheduled` and due) at once.
    fn jobs_claim(
        &self,
        request: ClaimRequest<'_>,
    ) -> impl Future<Output = Result<Vec<ClaimedJob>>> + Send;

    /// Appends log lines.
    fn logs_insert(&self, lines: &[LogLine]) -> impl Future<Output = Result<()>> + Send;

    /// Sets the progress of running jobs.
    fn progress_update(
        &self,
        updates: &[ProgressUpdate],
    ) -> impl Future<Output = Result<()>> + Send;

    /// The stored result of step `name` of a job, as JSON.
    fn step_get(
        &self,
        job_id: JobId,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>>> + Send;

    /// Stores the result of step `name` of a job (JSON); an existing one is kept.
    fn step_put(
        &self,
        job_id: JobId,
        name: &str,
        value: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Which of `ids` have been deleted (so their running attempts should stop).
    fn jobs_deleted_among(&self, ids: &[JobId]) -> impl Future<Output = Result<Vec<JobId>>> + Send;

    /// Records finished attempts in one transaction; stale ones (fence fails) are ignored.
    /// Continuations of a job that succeeded move to `Enqueued` (its `on_failure` ones
    /// are deleted); the `on_failure` continuations of a job that failed for good move
    /// to `Enqueued`, its others stay `Awaiting`.
    fn jobs_complete(&self, completions: &[Completion]) -> impl Future<Output = Result<()>> + Send;

    /// When the earliest runnable job is due, if any.
    fn jobs_next_run_at(&self) -> impl Future<Output = Result<Option<DateTime<Utc>>>> + Send;

    /// Puts every job still `Processing` under `owner` (or those of `only`) back to
    /// `Enqueued`, the attempt not counted: for a graceful shutdown, and for jobs
    /// claimed ahead that found no free worker.
    fn jobs_release(
        &self,
        owner: &str,
        only: Option<&[JobId]>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// `Processing` jobs whose lease ended before `now`.
    fn jobs_expired(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<ExpiredJob>>> + Send;

    /// Deletes `Succeeded` jobs finished before `succeeded_before` and `Deleted` ones
    /// deleted before `deleted_before`, with their history.
    fn jobs_prune(
        &self,
        succeeded_before: DateTime<Utc>,
        deleted_before: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Upserts the server's row and extends the lease of every job it is running.
    fn server_heartbeat(
        &self,
        server: &ServerRow,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Removes a server's row (at shutdown).
    fn server_remove(&self, id: &str) -> impl Future<Output = Result<()>> + Send;

    /// Removes rows of servers that stopped heartbeating before `dead_before`.
    fn servers_prune(&self, dead_before: DateTime<Utc>)
    -> impl Future<Output = Result<u64>> + Send;

    /// Inserts or updates a recurring job. A changed schedule or zone takes the new
    /// `next_run_at`; an unchanged one keeps the stored one, so ticks missed while no
    /// server ran are still seen. A job disabled because it had left the code is
    /// enabled again; one disabled by a user stays off.
    fn recurring_upsert(
        &self,
        recurring: &NewRecurring,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Disables code-declared recurring jobs whose id is not in `declared`.
    fn recurring_disable_missing(
        &self,
        declared: &[String],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// One recurring job.
    fn recurring_get(&self, id: &str)
    -> impl Future<Output = Result<Option<RecurringInfo>>> + Send;

    /// Every recurring job, by id.
    fn recurring_list(&self) -> impl Future<Output = Result<Vec<RecurringInfo>>> + Send;

    /// Deletes a recurring job; false when there was none.
    fn recurring_delete(&self, id: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Switches a recurring job on (from `next_run_at`) or off; false when there is none.
    fn recurring_set_enabled(
        &self,
        id: &str,
        enabled: bool,
        next_run_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Enabled recurring jobs whose next tick is at or before `now`.
    fn recurring_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<RecurringInfo>>> + Send;

    /// The earliest next tick of any enabled recurring job.
    fn recurring_next_run_at(&self) -> impl Future<Output = Result<Option<DateTime<Utc>>>> + Send;

    /// In one transaction: advances `next_run_at` by compare-and-set and, if that won
    /// and no earlier run is still active (unless overlap is allowed), inserts the runs.
    fn recurring_fire(
        &self,
        request: FireRequest<'_>,
    ) -> impl Future<Output = Result<Fired>> + Send;
}

/// The backend chosen at connect time. An enum rather than a trait object, so the
/// `Storage` trait keeps its `async fn`s and each call is a plain match.
#[derive(Debug, Clone)]
pub(crate) enum AnyStorage {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlite::SqliteStorage),
    #[cfg(feature = "postgres")]
    Postgres(postgres::PgStorage),
}

impl AnyStorage {
    /// Signals from other processes that jobs were enqueued, where the backend has
    /// them (PostgreSQL `LISTEN`); `None` means servers rely on polling for those.
    pub(crate) fn wakeups(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        match self {
            #[cfg(feature = "sqlite")]
            AnyStorage::Sqlite(_) => None,
            #[cfg(feature = "postgres")]
            AnyStorage::Postgres(storage) => storage.wakeups(),
        }
    }
}

macro_rules! dispatch {
    ($self:ident, $storage:ident => $call:expr) => {
        match $self {
            #[cfg(feature = "sqlite")]
            AnyStorage::Sqlite($storage) => $storage.observe($call.await),
            #[cfg(feature = "postgres")]
            AnyStorage::Postgres($storage) => $call.await,
        }
    };
}

impl Storage for AnyStorage {
    async fn migrate(&self) -> Result<()> {
        dispatch!(self, s => s.migrate())
    }
    async fn jobs_insert(&self, jobs: &[NewJob]) -> Result<()> {
        dispatch!(self, s => s.jobs_insert(jobs))
    }
    async fn job_get(&self, id: JobId) -> Result<Option<JobInfo>> {
        dispatch!(self, s => s.job_get(id))
    }
    async fn job_delete(&self, id: JobId, now: DateTime<Utc>) -> Result<bool> {
        dispatch!(self, s => s.job_delete(id, now))
    }
    async fn jobs_list(&self, query: &JobQuery) -> Result<Vec<JobSummary>> {
        dispatch!(self, s => s.jobs_list(query))
    }
    async fn jobs_count(&self) -> Result<Vec<(JobState, u64)>> {
        dispatch!(self, s => s.jobs_count())
    }
    async fn job_requeue(&self, id: JobId, now: DateTime<Utc>) -> Result<bool> {
        dispatch!(self, s => s.job_requeue(id, now))
    }
    async fn jobs_requeue_matching(&self, query: &JobQuery, now: DateTime<Utc>) -> Result<u64> {
        dispatch!(self, s => s.jobs_requeue_matching(query, now))
    }
    async fn jobs_delete_matching(&self, query: &JobQuery, now: DateTime<Utc>) -> Result<u64> {
        dispatch!(self, s => s.jobs_delete_matching(query, now))
    }
    async fn jobs_throughput(&self, since: DateTime<Utc>) -> Result<Vec<ThroughputPoint>> {
        dispatch!(self, s => s.jobs_throughput(since))
    }
    async fn servers_list(&self) -> Result<Vec<ServerInfo>> {
        dispatch!(self, s => s.servers_list())
    }
    async fn jobs_claim(&self, request: ClaimRequest<'_>) -> Result<Vec<ClaimedJob>> {
        dispatch!(self, s => s.jobs_claim(request))
    }
    async fn jobs_complete(&self, completions: &[Completion]) -> Result<()> {
        dispatch!(self, s => s.jobs_complete(completions))
    }
    async fn logs_insert(&self, lines: &[LogLine]) -> Result<()> {
        dispatch!(self, s => s.logs_insert(lines))
    }
    async fn progress_update(&self, updates: &[ProgressUpdate]) -> Result<()> {
        dispatch!(self, s => s.progress_update(updates))
    }
    async fn step_get(&self, job_id: JobId, name: &str) -> Result<Option<String>> {
        dispatch!(self, s => s.step_get(job_id, name))
    }
    async fn step_put(
        &self,
        job_id: JobId,
        name: &str,
        value: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        dispatch!(self, s => s.step_put(job_id, name, value, at))
    }
    async fn jobs_deleted_among(&self, ids: &[JobId]) -> Result<Vec<JobId>> {
        dispatch!(self, s => s.jobs_deleted_among(ids))
    }
    async fn jobs_next_run_at(&self) -> Result<Option<DateTime<Utc>>> {
        dispatch!(self, s => s.jobs_next_run_at())
    }
    async fn jobs_release(
        &self,
        owner: &str,
        only: Option<&[JobId]>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        dispatch!(self, s => s.jobs_release(owner, only, now))
    }
    async fn jobs_expired(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<ExpiredJob>> {
        dispatch!(self, s => s.jobs_expired(now, limit))
    }
    async fn jobs_prune(
        &self,
        succeeded_before: DateTime<Utc>,
        deleted_before: DateTime<Utc>,
    ) -> Result<u64> {
        dispatch!(self, s => s.jobs_prune(succeeded_before, deleted_before))
    }
    async fn server_heartbeat(
        &self,
        server: &ServerRow,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<()> {
        dispatch!(self, s => s.server_heartbeat(server, now, lease_until))
    }
    async fn server_remove(&self, id: &str) -> Result<()> {
        dispatch!(self, s => s.server_remove(id))
    }
    async fn servers_prune(&self, dead_before: DateTime<Utc>) -> Result<u64> {
        dispatch!(self, s => s.servers_prune(dead_before))
    }
    async fn recurring_upsert(&self, recurring: &NewRecurring, now: DateTime<Utc>) -> Result<()> {
        dispatch!(self, s => s.recurring_upsert(recurring, now))
    }
    async fn recurring_disable_missing(
        &self,
        declared: &[String],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        dispatch!(self, s => s.recurring_disable_missing(declared, now))
    }
    async fn recurring_get(&self, id: &str) -> Result<Option<RecurringInfo>> {
        dispatch!(self, s => s.recurring_get(id))
    }
    async fn recurring_list(&self) -> Result<Vec<RecurringInfo>> {
        dispatch!(self, s => s.recurring_list())
    }
    async fn recurring_delete(&self, id: &str) -> Result<bool> {
        dispatch!(self, s => s.recurring_delete(id))
    }
    async fn recurring_set_enabled(
        &self,
        id: &str,
        enabled: bool,
        next_run_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        dispatch!(self, s => s.recurring_set_enabled(id, enabled, next_run_at, now))
    }
    async fn recurring_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<RecurringInfo>> {
        dispatch!(self, s => s.recurring_due(now, limit))
    }
    async fn recurring_next_run_at(&self) -> Result<Option<DateTime<Utc>>> {
        dispatch!(self, s => s.recurring_next_run_at())
    }
    async fn recurring_fire(&self, request: FireRequest<'_>) -> Result<Fired> {
        dispatch!(self, s => s.recurring_fire(request))
    }
}

/// States a requeue moves to `Enqueued`: not running, not waiting for a parent.
pub(crate) const REQUEUEABLE: &str = "('Scheduled', 'Enqueued', 'Succeeded', 'Failed', 'Deleted')";

/// Longest log line stored; longer ones are cut.
pub(crate) const MAX_LOG_LINE_BYTES: usize = 4 * 1024;

/// Longest error message stored for one attempt; longer ones are cut.
pub(crate) const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// Most error sources stored for one attempt.
pub(crate) const MAX_SOURCES: usize = 32;

/// Cuts `text` to at most `max` bytes on a character boundary, saying so.
pub(crate) fn cap(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [cut: {} bytes in all]", &text[..end], text.len())
}

/// The failure as stored: message and sources capped, sources as a JSON array.
pub(crate) fn stored_failure(failure: &Failure) -> (String, String) {
    let message = cap(failure.message(), MAX_MESSAGE_BYTES);
    let sources: Vec<String> = failure
        .sources()
        .iter()
        .take(MAX_SOURCES)
        .map(|source| cap(source, MAX_MESSAGE_BYTES / 4))
        .collect();
    let sources = serde_json::to_string(&sources).expect("a list of strings serializes");
    (message, sources)
}

/// A failed attempt's error as read back: the stored message and JSON list of sources.
pub(crate) fn stored_error(message: Option<String>, sources: Option<String>) -> Option<ErrorInfo> {
    message.map(|message| ErrorInfo {
        message,
        sources: sources
            .and_then(|sources| serde_json::from_str(&sources).ok())
            .unwrap_or_default(),
    })
}

/// A stored JSON payload; text that no longer parses is shown as a string, not lost.
pub(crate) fn stored_json(text: String) -> serde_json::Value {
    serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
}

/// The text of `last_error`: message and sources joined.
pub(crate) fn failure_summary(failure: &Failure) -> String {
    cap(&failure.to_string(), MAX_MESSAGE_BYTES)
}
