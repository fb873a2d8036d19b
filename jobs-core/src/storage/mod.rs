//! Storage backends. Every backend implements [`Storage`], the union of one trait per
//! concern, with the same behaviour; each backend implements each trait in the file of
//! the same concern (`lifecycle.rs`, `admin.rs`, …).
//!
//! The contracts below say what each call changes and returns, whatever the backend;
//! the conformance suite (`conformance/`, unit tests of this crate) checks each of them
//! on SQLite and on PostgreSQL by calling the traits directly.
//! Common to all of them:
//! - Every write is atomic: it happens entirely or not at all.
//! - "History row" means one row of `jobs_event` (read back as `JobInfo::history`), with
//!   the time, the state the job moved to, its attempt, and the server where one is named.
//!   A job's creation is said by its row instead (SQLite migration 32, PostgreSQL 41),
//!   and on SQLite the start of an attempt by the job row while it runs and by the row
//!   of its result after (migration 33), and a success, with its attempt's start, by the
//!   job row while the job stays succeeded (migration 34); the history read gives each
//!   as its own entry, in its place, all the same.
//! - Times are stored to the microsecond.
//! - PostgreSQL stores a NUL in the text it writes (display names, labels, errors, log
//!   lines, server names, step names) as U+FFFD, since its `text` cannot hold NUL;
//!   SQLite stores text as given.
//! - Every claim raises the job's `token` by one; nothing lowers it. A claim is named by
//!   a [`Fence`] (id and token), and every write on behalf of an attempt (its result,
//!   progress, log lines, steps; its release, rescue and lease renewal) applies only
//!   while the job still has that token, so a write of an attempt whose claim was lost
//!   (released, rescued, deleted, claimed again) changes nothing.
//! - Leases (`lease_until`) are on the database's clock: on PostgreSQL every lease
//!   written or compared is `clock_timestamp() + offset` plus its length, `offset` being
//!   what the caller's clock adds to real time (zero but for a test's manual clock); on
//!   SQLite, one machine's database, the `now` the caller passes.

use std::future::Future;
use std::ops::Range;

use chrono::{DateTime, Utc};

use crate::job::info::{
    JobInfo, JobQuery, JobSummary, PauseKind, Paused, ServerInfo, ThroughputPoint,
};
use crate::recurring::{NewRecurring, RecurringInfo};
use crate::{JobId, JobState, Result};

mod any;
mod batches;
mod migrate;
mod rates;
mod recurring_store;
mod release;
mod rows;
mod signals;
mod stored;
mod types;

#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

#[cfg(test)]
pub(crate) mod conformance;

pub(crate) use self::any::AnyStorage;
pub(crate) use self::batches::{BatchMember, BatchStore, NewBatch, StoredBatch};
pub(crate) use self::rates::{RateStore, counted_for, queue_scope};
pub(crate) use self::recurring_store::RecurringStore;
pub(crate) use self::release::{Registration, release_order};
pub(crate) use self::signals::{SignalStore, kept_since};
pub(crate) use self::types::{
    Admission, Admitted, ClaimRequest, ClaimedJob, Completion, ConcurrencyKey, EventWait,
    ExpiredJob, Fence, FireRequest, Fired, LogLine, MAX_RESCUES, NewJob, Outcome, ProgressUpdate,
    QueueCounts, QueueSelector, RateCap, RateWindow, Requeue, ServerRow, UniqueClaim,
    WAIT_TIMED_OUT, WaitState, Waiting, WaitingBy,
};

/// The operations the client and the server need from a database.
///
/// Names are noun-then-verb. Every write on behalf of an attempt is fenced by its
/// claim's token, so a server that lost its claim can never overwrite a newer attempt,
/// and every maintenance step is idempotent, so two servers doing it at once is harmless.
pub(crate) trait Storage:
    Schema
    + LifecycleStore
    + AdminStore
    + ServerStore
    + RunningStore
    + RecurringStore
    + ToolStore
    + SignalStore
    + BatchStore
    + RateStore
{
}

impl<T> Storage for T where
    T: Schema
        + LifecycleStore
        + AdminStore
        + ServerStore
        + RunningStore
        + RecurringStore
        + ToolStore
        + SignalStore
        + BatchStore
        + RateStore
{
}

/// The schema.
pub(crate) trait Schema: Send + Sync + 'static {
    /// Applies, in version order, every embedded script whose version is not recorded in
    /// `jobs_migration` (created if missing), and records each one it applied. All of it
    /// runs in one transaction: a script that fails leaves the schema and
    /// `jobs_migration` as they were. Calls from many processes at once are serialized
    /// (PostgreSQL: a transaction-scoped advisory lock; SQLite: the write lock, taken at
    /// `BEGIN`), so each script is applied once; a call with nothing to apply changes
    /// nothing.
    fn migrate(&self) -> impl Future<Output = Result<()>> + Send;
}

/// A job's life from insert to its result: what clients and servers do to run jobs.
pub(crate) trait LifecycleStore: Send + Sync + 'static {
    /// Inserts `jobs` atomically. A job whose id is stored already is skipped (dedupe):
    /// the stored row is left unchanged and gets no history row. Each row created gets
    /// one history row: its state as inserted, attempt 0, at `created_at`, no server.
    /// When every job of the insert (on SQLite: of each statement of up to 500 rows) has
    /// `fresh_id`, the check for a stored id is skipped, and such an id that is stored
    /// after all makes the insert fail. Nothing happens for no jobs.
    /// PostgreSQL notifies the wake-up channel on commit when it created a row.
    fn jobs_insert(&self, jobs: &[NewJob]) -> impl Future<Output = Result<()>> + Send;

    /// Inserts `jobs` atomically as [`jobs_insert`](Self::jobs_insert) does, but for
    /// each job with a unique key that a job created less than its window ago holds in
    /// a state it counts: that job's id answers it and nothing is stored for it; with
    /// `replace`, a holder never claimed and not awaiting a parent takes the job's
    /// payload, display name, labels, `run_at` and state, with a history row saying so.
    /// A job stored takes its key, until its `until`. Within one call, a key taken by
    /// an earlier job makes the later ones its duplicates. Enqueues of one key are
    /// serialized until commit, across processes, so of many at once one is stored.
    fn jobs_admit(&self, jobs: &[NewJob]) -> impl Future<Output = Result<Vec<Admitted>>> + Send;

    /// Claims up to `limit` jobs that are `Enqueued`, or `Scheduled`, with `run_at` at or
    /// before `now`, in the queues `queues` selects, taking the highest `priority`
    /// first and then the earliest `run_at`. Each claimed job moves to `Processing` with
    /// its attempt counted (`attempt + 1`), `token + 1`, `owner`, `updated_at = now`,
    /// the lease (SQLite: `lease_until`; PostgreSQL: the database's clock + `offset` +
    /// `lease_until - now`), `ahead` set on all but the first `start_now` in claim order,
    /// and gets a history row (`Processing`, the new attempt, server `owner`, at `now`).
    /// Returns the claimed jobs with their token and `ahead` (on PostgreSQL in claim
    /// order; on SQLite in no set order). Concurrent claims never return the same job.
    /// With a `rate`, no more than leaves the starts of its scope after
    /// `now - window` at its `count` or fewer, and in the same step the claim's starts
    /// are recorded at `now` and the scope's starts at or before `now - window` deleted
    /// (on PostgreSQL `now` is the database's clock plus `offset`, as for leases).
    fn jobs_claim(
        &self,
        request: ClaimRequest<'_>,
    ) -> impl Future<Output = Result<Vec<ClaimedJob>>> + Send;

    /// Records finished attempts, all in one transaction.
    ///
    /// The fence: a completion applies only if the job is `Processing` with the
    /// completion's `owner` and `token`. One that fails it (the job was deleted,
    /// released, rescued, finished or claimed again meanwhile, or the same result came
    /// earlier or twice in this batch) changes nothing and writes no history.
    ///
    /// One that holds moves the job to the outcome's state (`Succeeded`; `Scheduled`
    /// with `run_at` = the retry time, for a retry or a rescue (`Orphaned`, which also
    /// counts `rescues + 1`); `Failed`; `Enqueued` with `run_at` = its time and
    /// `attempt - 1` for `NotStarted`), sets `last_error` to the failure's summary (kept
    /// when there is no failure), sets `result` to the completion's result when it
    /// succeeded (`NULL` for none; any other outcome keeps the stored one), clears
    /// `owner`, `lease_until` and `ahead`, sets
    /// `updated_at = at`, and writes a history row (the state, the attempt as stored,
    /// server `owner`, at `at`, and for a failure its capped message and sources, for
    /// `NotStarted` and `Sleeping` its note as the message). `Sleeping` moves it to
    /// `Scheduled` at `until` with `attempt - 1`; with a `wait` it also sets `wait_name`
    /// and `wait_key` (every other outcome clears them), and then, when an event of that
    /// name and key sent within [`crate::EVENT_RETENTION`] before `at` is stored, resumes
    /// the job at once as [`SignalStore::signal_send`] does. PostgreSQL notifies the
    /// wake-up channel when a job became runnable at once (`NotStarted`, `Orphaned`, a
    /// continuation, a wait resumed).
    ///
    /// Then the job's direct `Awaiting` continuations: after `Succeeded` those without
    /// `on_failure` move to `Enqueued` and those with it to `Deleted`; after `Failed`
    /// those with `on_failure` move to `Enqueued` and the others stay `Awaiting`; a retry
    /// moves none. A released continuation gets `run_at` and `updated_at` set to a time
    /// of the batch (PostgreSQL: its parent's `at`; SQLite: the latest `at` of the
    /// batch); each continuation moved gets a history row (its state and attempt, no
    /// server). Continuations of continuations are not touched.
    fn jobs_complete(&self, completions: &[Completion]) -> impl Future<Output = Result<()>> + Send;

    /// Puts the jobs that are `Processing` under `owner` (all of them, or only the
    /// claims in `only`, each fenced on its token) back to `Enqueued`, the attempt not
    /// counted (`attempt - 1`), with `owner`, `lease_until` and `ahead` cleared and
    /// `run_at = updated_at = now`; each gets a history row (`Enqueued`, the lowered
    /// attempt, server `owner`, at `now`). Returns how many jobs moved. For a graceful
    /// shutdown, and for jobs claimed ahead that found no free worker. PostgreSQL
    /// notifies the wake-up channel when it moved any.
    fn jobs_release(
        &self,
        owner: &str,
        only: Option<&[Fence]>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Puts the jobs that are `Processing` under `owner` and whose id is not in `held`
    /// back, as [`LifecycleStore::jobs_release`] does, with the history message
    /// "released: its server no longer held it". For rows a server owns in the
    /// database but not in memory (a claim whose answer never arrived, a result lost).
    /// The caller makes sure no claim of its own is in flight.
    fn jobs_release_unheld(
        &self,
        owner: &str,
        held: &[JobId],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Up to `limit` jobs that are `Processing` with `lease_until` strictly before
    /// the database's now (SQLite: `now`; PostgreSQL: `clock_timestamp() + offset`), in
    /// no set order (an empty owner where none is stored), with their token, `ahead`
    /// and `rescues`. Changes nothing: the caller rescues them through
    /// [`LifecycleStore::jobs_complete`], fenced on the owner and token read here.
    fn jobs_expired(
        &self,
        now: DateTime<Utc>,
        offset: chrono::Duration,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<ExpiredJob>>> + Send;

    /// The attempts of these claims have stopped: each job that is `Deleted` with that
    /// token gets `owner` and `lease_until` cleared, so it may be requeued at once.
    /// Returns how many changed.
    fn jobs_stopped(&self, stopped: &[Fence]) -> impl Future<Output = Result<u64>> + Send;

    /// The earliest `run_at` of the jobs that are `Enqueued` or `Scheduled` (due or
    /// not), or `None` when there are none.
    fn jobs_next_run_at(&self) -> impl Future<Output = Result<Option<DateTime<Utc>>>> + Send;

    /// Those of `ids` whose job is `Deleted` (so their running attempts should stop), in
    /// no set order; an id with no job is left out.
    fn jobs_deleted_among(&self, ids: &[JobId]) -> impl Future<Output = Result<Vec<JobId>>> + Send;

    /// Fails, in one transaction, up to `limit` jobs that are `Enqueued` or `Scheduled`
    /// with `run_at` before `due_before` while server rows exist and none registers the
    /// job's name (a row without names, of an older release, registers every name; with
    /// no server row nothing fails). Each gets `last_error` and a `Failed` history row by
    /// `server` saying ``no server registers `name` `` followed by `note`; the
    /// `on_failure` continuations awaiting them are released. Returns how many failed.
    fn jobs_fail_unserved(
        &self,
        due_before: DateTime<Utc>,
        now: DateTime<Utc>,
        server: &str,
        note: &str,
        limit: u32,
    ) -> impl Future<Output = Result<u64>> + Send;
}

/// What the dashboard and the client's admin calls read and change.
pub(crate) trait AdminStore: Send + Sync + 'static {
    /// One job, or `None` when there is no such id: its row, its history rows and log
    /// lines (each in the order written), its progress when both parts are set.
    fn job_get(&self, id: JobId) -> impl Future<Output = Result<Option<JobInfo>>> + Send;

    /// A page of jobs matching the query's filters (state, name, label, text search),
    /// newest id first: at most `min(limit, 1000)` jobs, those with an id below `after`
    /// when it is set (keyset paging: the next page starts after the last id of this one).
    fn jobs_list(&self, query: &JobQuery) -> impl Future<Output = Result<Vec<JobSummary>>> + Send;

    /// Moves a job that is not `Deleted` to `Deleted` (`owner`, `token` and
    /// `lease_until` kept, `updated_at = now`, a history row: `Deleted`, its attempt, no
    /// server), and with it its `Awaiting` continuations, transitively, each the same
    /// way. A running job's owner learns of the deletion through
    /// [`LifecycleStore::jobs_deleted_among`] (on PostgreSQL also from a notification on
    /// the deletions channel, sent on commit), stops the attempt, renews its lease
    /// until then and reports it through [`LifecycleStore::jobs_stopped`]. Returns
    /// whether the job exists: true also when it was `Deleted` already (nothing changes
    /// then).
    fn job_delete(
        &self,
        id: JobId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Moves a job in a requeueable state (not `Processing`, not `Awaiting`) whose
    /// attempt is not still live to `Enqueued` to run now: `attempt = 0`, `rescues = 0`,
    /// `owner`, `lease_until` and `ahead` cleared, the token kept, `run_at = updated_at =
    /// now`, a history row (`Enqueued`, attempt 0, no server). Its continuations are not
    /// touched. An attempt is live while the job has an owner and `lease_until` after
    /// the database's now (SQLite: `now`; PostgreSQL: `clock_timestamp() + offset`): a
    /// job deleted while it ran, whose attempt has not stopped. The answer says what
    /// happened. PostgreSQL notifies the wake-up channel when it moved.
    fn job_requeue(
        &self,
        id: JobId,
        now: DateTime<Utc>,
        offset: chrono::Duration,
    ) -> impl Future<Output = Result<Requeue>> + Send;

    /// [`AdminStore::job_requeue`] for every job matching the query's filters (its
    /// `after` and `limit` do not apply), skipping those whose attempt is still live;
    /// returns how many moved.
    fn jobs_requeue_matching(
        &self,
        query: &JobQuery,
        now: DateTime<Utc>,
        offset: chrono::Duration,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// [`AdminStore::job_delete`] for every job that is not `Deleted` and matches the
    /// query's filters (its `after` and `limit` do not apply), continuations included;
    /// returns how many matching jobs were deleted, not counting continuations taken
    /// along that do not match.
    fn jobs_delete_matching(
        &self,
        query: &JobQuery,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Finished attempts per UTC minute, for history rows at or after `since`, oldest
    /// minute first: `succeeded` counts rows in state `Succeeded`, `failed` rows with an
    /// error message (a failed attempt, retried, rescued or not) but not `Enqueued` ones
    /// (an attempt given back uncharged). Minutes without any are left out.
    fn jobs_throughput(
        &self,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<ThroughputPoint>>> + Send;

    /// How many jobs are in each state, for the states that have any, ordered by the
    /// state's name. Read from counters that triggers keep (see the migrations that
    /// create `jobs_state_count`), not from the job table: it costs the same at any
    /// table size.
    fn jobs_count(&self) -> impl Future<Output = Result<Vec<(JobState, u64)>>> + Send;

    /// Folds the per-statement changes of the counts that PostgreSQL's triggers append
    /// into one counter row per state, so that [`AdminStore::jobs_count`] stays short;
    /// returns how many changes it folded. Safe with several servers folding at once.
    /// SQLite keeps its counters up to date in place: nothing to fold.
    fn jobs_count_fold(&self) -> impl Future<Output = Result<u64>> + Send;

    /// Per queue (or per name), the jobs due at `now` and not claimed (`Enqueued` or
    /// `Scheduled` with `run_at <= now`) and the earliest `run_at` among them, ordered
    /// by the key; those without any are left out.
    fn jobs_waiting(
        &self,
        now: DateTime<Utc>,
        by: WaitingBy,
    ) -> impl Future<Output = Result<Vec<Waiting>>> + Send;

    /// Per queue, its `Enqueued`, `Scheduled`, `Processing` and `Failed` jobs, counted
    /// as [`QueueCounts`] says; queues without any are left out; ordered by queue. Reads
    /// only rows in those states, through the index on the state: the `Succeeded` and
    /// `Deleted` jobs, most of a big table, are never read.
    fn jobs_count_by_queue(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<QueueCounts>>> + Send;

    /// Every server row, by name, then id.
    fn servers_list(&self) -> impl Future<Output = Result<Vec<ServerInfo>>> + Send;

    /// Pauses a queue or job name: inserts its `jobs_pause` row, or updates who and when
    /// when it is paused already.
    fn pause_set(
        &self,
        kind: PauseKind,
        name: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Resumes a queue or job name: deletes its row; → whether it was paused.
    fn pause_clear(&self, kind: PauseKind, name: &str)
    -> impl Future<Output = Result<bool>> + Send;

    /// Every pause, by kind (queues first), then name.
    fn pauses_list(&self) -> impl Future<Output = Result<Vec<Paused>>> + Send;

    /// Deletes the jobs that are `Succeeded` with `updated_at` before `succeeded_before`
    /// or `Deleted` with `updated_at` before `deleted_before`, with their history rows,
    /// log lines and step results, at most `limit` of them (oldest `updated_at` first,
    /// then lowest ids; the next call takes the rest); returns how many jobs it deleted.
    /// Other states are never pruned, nor are batch rows but with their last members and
    /// fan-in jobs. Reads about the rows it deletes, through the index on the state and
    /// `updated_at`, however many old rows wait. On PostgreSQL, locked rows are skipped
    /// (left for the next prune); prunes take turns.
    fn jobs_prune(
        &self,
        succeeded_before: DateTime<Utc>,
        deleted_before: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// How many jobs are `Succeeded` with `updated_at` in `succeeded` or `Deleted` with
    /// `updated_at` in `deleted`: those that passed their retention between two prunes.
    /// Reads those rows' entries of the index on the state and `updated_at` only.
    fn jobs_count_prunable(
        &self,
        succeeded: Range<DateTime<Utc>>,
        deleted: Range<DateTime<Utc>>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Deletes up to `limit` unique keys whose window ended at or before `before`;
    /// returns how many.
    fn unique_prune(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<u64>> + Send;
}

/// The servers' own rows and leases.
pub(crate) trait ServerStore: Send + Sync + 'static {
    /// In one transaction: inserts the server's row with `heartbeat_at = now`, or, when
    /// its id is stored, updates only `running` and `heartbeat_at` (name, host, pid,
    /// workers and start time stay as first stored); and renews the leases of the
    /// claims in `held` that are still this server's: the job has that token, this
    /// server as owner and is `Processing` (or `Deleted`: an attempt still stopping).
    /// Each such job gets `lease_until` = the database's now + `lease` (SQLite: `now +
    /// lease`; PostgreSQL: `clock_timestamp() + offset + lease`) and `ahead` = whether
    /// its id is in `waiting` (claimed ahead, not started). Jobs of this server not in
    /// `held` are not touched. Returns the claims of `held` that are no longer this
    /// server's (claimed again, finished, released, rescued, gone), in no set order: a
    /// claim, not a job, since the job of a lost claim may be held again under a newer
    /// one by the time the caller reads the answer.
    fn server_heartbeat(
        &self,
        server: &ServerRow,
        held: &[Fence],
        waiting: &[JobId],
        lease: std::time::Duration,
        offset: chrono::Duration,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Fence>>> + Send;

    /// Deletes a server's row (at shutdown), if there is one; its jobs are not touched.
    fn server_remove(&self, id: &str) -> impl Future<Output = Result<()>> + Send;

    /// Whether a server other than `server`, with `heartbeat_at` at or after
    /// `alive_after`, runs the job name `name` with data of a shape other than `shape`:
    /// its row does not list `shape` for `name` (a row without shapes, of an older
    /// release, lists none), and it runs `name` (a row without names runs every name).
    fn servers_other_shape(
        &self,
        name: &str,
        shape: &str,
        server: &str,
        alive_after: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Deletes the rows of servers whose `heartbeat_at` is before `dead_before`; returns
    /// how many. Their jobs are not touched (their leases run out on their own).
    fn servers_prune(&self, dead_before: DateTime<Utc>)
    -> impl Future<Output = Result<u64>> + Send;
}

/// What a running job writes besides its result: log lines, progress, step results.
pub(crate) trait RunningStore: Send + Sync + 'static {
    /// Appends log lines, in order, in one transaction; a message longer than
    /// `MAX_LOG_LINE_BYTES` is cut (saying so). Only the lines of a job that is
    /// `Processing` with the line's token are kept; the others are dropped.
    fn logs_insert(&self, lines: &[LogLine]) -> impl Future<Output = Result<()>> + Send;

    /// Sets `progress_done` and `progress_total` of each job named that is
    /// `Processing` with the update's token, in one transaction; the others are
    /// ignored. A batch names each job once (which of two updates of one job wins is
    /// not set).
    fn progress_update(
        &self,
        updates: &[ProgressUpdate],
    ) -> impl Future<Output = Result<()>> + Send;

    /// The result of the parent of job `id` (the job it continues), as JSON text:
    /// `None` when the job has no parent (or is gone), `Some(None)` when the parent
    /// stored no result.
    fn job_parent_result(
        &self,
        id: JobId,
    ) -> impl Future<Output = Result<Option<Option<String>>>> + Send;

    /// The stored result of step `name` of a job, as JSON text; `None` when none is stored.
    fn step_get(
        &self,
        job_id: JobId,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>>> + Send;

    /// Stores the result of step `name` of a job (JSON text), if the job is
    /// `Processing` under the claim `job` (else nothing is stored). When one is stored
    /// already, it is kept and `value` is dropped: the first result of a step wins.
    fn step_put(
        &self,
        job: Fence,
        name: &str,
        value: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// What agent tool calls store and read on behalf of one caller.
///
/// The caller is the id the application's authentication gave, stored in the `caller`
/// column of each job and recurring job a tool call creates (and of each run of such a
/// recurring job) and compared for equality only: never as a prefix, a pattern or a
/// label. Rows without a caller (everything not created by a tool) belong to no caller.
/// "Pending" means `Enqueued` or `Scheduled`.
pub(crate) trait ToolStore: Send + Sync + 'static {
    /// In one transaction: counts the caller's pending jobs; when that count is at
    /// `limit` or above, stores nothing and answers [`Admission::Refused`] with it;
    /// otherwise inserts `job` as [`LifecycleStore::jobs_insert`] does, with `caller`
    /// stored, and answers [`Admission::Stored`]. Calls for one caller are serialized
    /// (SQLite: the write lock, taken at `BEGIN`; PostgreSQL: a transaction-scoped
    /// advisory lock keyed by the caller), so concurrent calls never store past `limit`.
    fn tool_job_insert(
        &self,
        job: &NewJob,
        caller: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Admission>> + Send;

    /// [`ToolStore::tool_job_insert`] for a recurring job: counts the caller's recurring
    /// jobs, and below `limit` inserts `recurring` as
    /// [`RecurringStore::recurring_upsert`] does, with `caller` stored.
    fn tool_recurring_insert(
        &self,
        recurring: &NewRecurring,
        caller: &str,
        limit: u32,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Admission>> + Send;

    /// The caller's pending jobs, newest id first: at most `min(limit, 1000)`, those
    /// with an id below `after` when it is set.
    fn tool_jobs_list(
        &self,
        caller: &str,
        after: Option<JobId>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<JobSummary>>> + Send;

    /// The caller's recurring jobs by id: at most `min(limit, 1000)`, those with an id
    /// above `after` when it is set.
    fn tool_recurring_list(
        &self,
        caller: &str,
        after: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<RecurringInfo>>> + Send;

    /// The state of job `id` when its caller is `caller`; `None` when there is no such
    /// job or it is another caller's (or no caller's).
    fn tool_job_state(
        &self,
        caller: &str,
        id: JobId,
    ) -> impl Future<Output = Result<Option<JobState>>> + Send;

    /// Deletes recurring job `id` when its caller is `caller` (its runs stay); returns
    /// whether it did.
    fn tool_recurring_delete(
        &self,
        caller: &str,
        id: &str,
    ) -> impl Future<Output = Result<bool>> + Send;
}
