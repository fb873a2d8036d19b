//! The backend chosen at connect time, and the dispatch of each storage call to it.

use std::ops::Range;

use chrono::{DateTime, Utc};

use super::{
    AdminStore, Admission, BatchMember, BatchStore, ClaimRequest, ClaimedJob, Completion,
    ExpiredJob, Fence, FireRequest, Fired, LifecycleStore, LogLine, NewBatch, NewJob,
    ProgressUpdate, QueueCounts, RateStore, RateWindow, RecurringStore, Requeue, RunningStore,
    Schema, ServerRow, ServerStore, SignalStore, Storage, StoredBatch, ToolStore,
};
use super::{Admitted, EventWait, Registration, WaitState, Waiting, WaitingBy};
use crate::job::info::{
    JobInfo, JobQuery, JobSummary, PauseKind, Paused, ServerInfo, ThroughputPoint,
};
use crate::recurring::{NewRecurring, RecurringInfo};
use crate::{JobId, JobState, Result};

#[cfg(feature = "postgres")]
use super::postgres;
#[cfg(feature = "sqlite")]
use super::sqlite;

/// The backend chosen at connect time. An enum rather than a trait object, so the
/// storage traits keep their `async fn`s and each call is a plain match.
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

    /// A handle of its own on the same database for the server's heartbeat, opened on
    /// the caller's runtime, so that a busy pool or a queue of writes never delays the
    /// heartbeat. On PostgreSQL one connection with the same connect options, whose
    /// waits are bounded by `bound`; on SQLite the process's write connection through a
    /// lane that goes before the writes queued for it (a second connection would get
    /// no turn at the file's write lock: see `sqlite/writer.rs`). A storage on the
    /// application's SQLite pool (or an in-memory database) shares that pool.
    #[cfg_attr(not(feature = "postgres"), allow(unused_variables))]
    pub(crate) async fn dedicated(&self, bound: std::time::Duration) -> Result<Self> {
        match self {
            #[cfg(feature = "sqlite")]
            AnyStorage::Sqlite(storage) => Ok(AnyStorage::Sqlite(storage.dedicated())),
            #[cfg(feature = "postgres")]
            AnyStorage::Postgres(storage) => {
                Ok(AnyStorage::Postgres(storage.dedicated(bound).await?))
            }
        }
    }

    /// A handle whose reads go through a pool of their own of `max_connections`, with
    /// the same connect options, opened lazily: what the dashboard reads through, so that
    /// its readers never take the connections claims and heartbeats wait for. Writes
    /// keep SQLite's one writer; on PostgreSQL they go through the new pool too, whose
    /// connections `pg_stat_activity` shows as `name`. A storage on the application's
    /// SQLite pool (or an in-memory database) shares it.
    pub(crate) fn reads_apart(&self, max_connections: u32, name: &str) -> Self {
        match self {
            #[cfg(feature = "sqlite")]
            AnyStorage::Sqlite(storage) => {
                AnyStorage::Sqlite(storage.reads_apart(max_connections, name))
            }
            #[cfg(feature = "postgres")]
            AnyStorage::Postgres(storage) => {
                AnyStorage::Postgres(storage.reads_apart(max_connections, name))
            }
        }
    }

    /// Whether leases are compared on one machine's clock (SQLite), where the server
    /// must tolerate that clock jumping.
    pub(crate) fn local_clock(&self) -> bool {
        match self {
            #[cfg(feature = "sqlite")]
            AnyStorage::Sqlite(_) => true,
            #[cfg(feature = "postgres")]
            AnyStorage::Postgres(_) => false,
        }
    }

    /// Signals from other processes that jobs were deleted, where the backend has them
    /// (PostgreSQL `LISTEN`); `None` means servers rely on polling for those.
    pub(crate) fn deletions(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        match self {
            #[cfg(feature = "sqlite")]
            AnyStorage::Sqlite(_) => None,
            #[cfg(feature = "postgres")]
            AnyStorage::Postgres(storage) => storage.deletions(),
        }
    }
}

/// Each backend, and so the enum, implements every concern: the whole [`Storage`].
const _: () = {
    const fn storage<S: Storage>() {}
    storage::<AnyStorage>();
    #[cfg(feature = "sqlite")]
    storage::<sqlite::SqliteStorage>();
    #[cfg(feature = "postgres")]
    storage::<postgres::PgStorage>();
};

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

impl Schema for AnyStorage {
    async fn migrate(&self) -> Result<()> {
        dispatch!(self, s => s.migrate())
    }
}

impl LifecycleStore for AnyStorage {
    async fn jobs_admit(&self, jobs: &[NewJob]) -> Result<Vec<Admitted>> {
        dispatch!(self, s => s.jobs_admit(jobs))
    }
    async fn jobs_insert(&self, jobs: &[NewJob]) -> Result<()> {
        dispatch!(self, s => s.jobs_insert(jobs))
    }
    async fn jobs_claim(&self, request: ClaimRequest<'_>) -> Result<Vec<ClaimedJob>> {
        dispatch!(self, s => s.jobs_claim(request))
    }
    async fn jobs_complete(&self, completions: &[Completion]) -> Result<()> {
        dispatch!(self, s => s.jobs_complete(completions))
    }
    async fn jobs_release(
        &self,
        owner: &str,
        only: Option<&[Fence]>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        dispatch!(self, s => s.jobs_release(owner, only, now))
    }
    async fn jobs_release_unheld(
        &self,
        owner: &str,
        held: &[JobId],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        dispatch!(self, s => s.jobs_release_unheld(owner, held, now))
    }
    async fn jobs_expired(
        &self,
        now: DateTime<Utc>,
        offset: chrono::Duration,
        limit: u32,
    ) -> Result<Vec<ExpiredJob>> {
        dispatch!(self, s => s.jobs_expired(now, offset, limit))
    }
    async fn jobs_stopped(&self, stopped: &[Fence]) -> Result<u64> {
        dispatch!(self, s => s.jobs_stopped(stopped))
    }
    async fn jobs_next_run_at(&self) -> Result<Option<DateTime<Utc>>> {
        dispatch!(self, s => s.jobs_next_run_at())
    }
    async fn jobs_deleted_among(&self, ids: &[JobId]) -> Result<Vec<JobId>> {
        dispatch!(self, s => s.jobs_deleted_among(ids))
    }
    async fn jobs_fail_unserved(
        &self,
        due_before: DateTime<Utc>,
        now: DateTime<Utc>,
        server: &str,
        note: &str,
        limit: u32,
    ) -> Result<u64> {
        dispatch!(self, s => s.jobs_fail_unserved(due_before, now, server, note, limit))
    }
}

impl AdminStore for AnyStorage {
    async fn job_get(&self, id: JobId) -> Result<Option<JobInfo>> {
        dispatch!(self, s => s.job_get(id))
    }
    async fn pause_set(
        &self,
        kind: PauseKind,
        name: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        dispatch!(self, s => s.pause_set(kind, name, by, at))
    }
    async fn pause_clear(&self, kind: PauseKind, name: &str) -> Result<bool> {
        dispatch!(self, s => s.pause_clear(kind, name))
    }
    async fn pauses_list(&self) -> Result<Vec<Paused>> {
        dispatch!(self, s => s.pauses_list())
    }
    async fn jobs_list(&self, query: &JobQuery) -> Result<Vec<JobSummary>> {
        dispatch!(self, s => s.jobs_list(query))
    }
    async fn job_delete(&self, id: JobId, now: DateTime<Utc>) -> Result<bool> {
        dispatch!(self, s => s.job_delete(id, now))
    }
    async fn job_requeue(
        &self,
        id: JobId,
        now: DateTime<Utc>,
        offset: chrono::Duration,
    ) -> Result<Requeue> {
        dispatch!(self, s => s.job_requeue(id, now, offset))
    }
    async fn jobs_requeue_matching(
        &self,
        query: &JobQuery,
        now: DateTime<Utc>,
        offset: chrono::Duration,
    ) -> Result<u64> {
        dispatch!(self, s => s.jobs_requeue_matching(query, now, offset))
    }
    async fn jobs_delete_matching(&self, query: &JobQuery, now: DateTime<Utc>) -> Result<u64> {
        dispatch!(self, s => s.jobs_delete_matching(query, now))
    }
    async fn jobs_throughput(&self, since: DateTime<Utc>) -> Result<Vec<ThroughputPoint>> {
        dispatch!(self, s => s.jobs_throughput(since))
    }
    async fn jobs_count(&self) -> Result<Vec<(JobState, u64)>> {
        dispatch!(self, s => s.jobs_count())
    }
    async fn jobs_count_fold(&self) -> Result<u64> {
        dispatch!(self, s => s.jobs_count_fold())
    }
    async fn jobs_waiting(&self, now: DateTime<Utc>, by: WaitingBy) -> Result<Vec<Waiting>> {
        dispatch!(self, s => s.jobs_waiting(now, by))
    }
    async fn jobs_count_by_queue(&self, now: DateTime<Utc>) -> Result<Vec<QueueCounts>> {
        dispatch!(self, s => s.jobs_count_by_queue(now))
    }
    async fn servers_list(&self) -> Result<Vec<ServerInfo>> {
        dispatch!(self, s => s.servers_list())
    }
    async fn jobs_prune(
        &self,
        succeeded_before: DateTime<Utc>,
        deleted_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64> {
        dispatch!(self, s => s.jobs_prune(succeeded_before, deleted_before, limit))
    }
    async fn jobs_count_prunable(
        &self,
        succeeded: Range<DateTime<Utc>>,
        deleted: Range<DateTime<Utc>>,
    ) -> Result<u64> {
        dispatch!(self, s => s.jobs_count_prunable(succeeded, deleted))
    }
    async fn unique_prune(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
        dispatch!(self, s => s.unique_prune(before, limit))
    }
}

impl ServerStore for AnyStorage {
    async fn server_heartbeat(
        &self,
        server: &ServerRow,
        held: &[Fence],
        waiting: &[JobId],
        lease: std::time::Duration,
        offset: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<Fence>> {
        dispatch!(self, s => s.server_heartbeat(server, held, waiting, lease, offset, now))
    }
    async fn server_remove(&self, id: &str) -> Result<()> {
        dispatch!(self, s => s.server_remove(id))
    }
    async fn servers_other_shape(
        &self,
        name: &str,
        shape: &str,
        server: &str,
        alive_after: DateTime<Utc>,
    ) -> Result<bool> {
        dispatch!(self, s => s.servers_other_shape(name, shape, server, alive_after))
    }
    async fn servers_prune(&self, dead_before: DateTime<Utc>) -> Result<u64> {
        dispatch!(self, s => s.servers_prune(dead_before))
    }
}

impl SignalStore for AnyStorage {
    async fn signal_send(
        &self,
        wait: &EventWait,
        payload: &str,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        dispatch!(self, s => s.signal_send(wait, payload, since, now))
    }
    async fn signal_wait(
        &self,
        job: Fence,
        wait: &EventWait,
        timeout: chrono::Duration,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<WaitState> {
        dispatch!(self, s => s.signal_wait(job, wait, timeout, since, now))
    }
    async fn signals_prune(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
        dispatch!(self, s => s.signals_prune(before, limit))
    }
}

impl RunningStore for AnyStorage {
    async fn logs_insert(&self, lines: &[LogLine]) -> Result<()> {
        dispatch!(self, s => s.logs_insert(lines))
    }
    async fn progress_update(&self, updates: &[ProgressUpdate]) -> Result<()> {
        dispatch!(self, s => s.progress_update(updates))
    }
    async fn job_parent_result(&self, id: JobId) -> Result<Option<Option<String>>> {
        dispatch!(self, s => s.job_parent_result(id))
    }
    async fn step_get(&self, job_id: JobId, name: &str) -> Result<Option<String>> {
        dispatch!(self, s => s.step_get(job_id, name))
    }
    async fn step_put(&self, job: Fence, name: &str, value: &str, at: DateTime<Utc>) -> Result<()> {
        dispatch!(self, s => s.step_put(job, name, value, at))
    }
}

impl RecurringStore for AnyStorage {
    async fn recurring_upsert(&self, recurring: &NewRecurring, now: DateTime<Utc>) -> Result<()> {
        dispatch!(self, s => s.recurring_upsert(recurring, now))
    }
    async fn recurring_register(
        &self,
        application: &str,
        release: &str,
        declared: &[NewRecurring],
        now: DateTime<Utc>,
    ) -> Result<Registration> {
        dispatch!(self, s => s.recurring_register(application, release, declared, now))
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
    async fn recurring_trigger(&self, run: &NewJob) -> Result<()> {
        dispatch!(self, s => s.recurring_trigger(run))
    }
    async fn recurring_set_error(&self, id: &str, error: Option<&str>) -> Result<bool> {
        dispatch!(self, s => s.recurring_set_error(id, error))
    }
    async fn recurring_fire(&self, request: FireRequest<'_>) -> Result<Fired> {
        dispatch!(self, s => s.recurring_fire(request))
    }
}

impl ToolStore for AnyStorage {
    async fn tool_job_insert(&self, job: &NewJob, caller: &str, limit: u32) -> Result<Admission> {
        dispatch!(self, s => s.tool_job_insert(job, caller, limit))
    }
    async fn tool_recurring_insert(
        &self,
        recurring: &NewRecurring,
        caller: &str,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Admission> {
        dispatch!(self, s => s.tool_recurring_insert(recurring, caller, limit, now))
    }
    async fn tool_jobs_list(
        &self,
        caller: &str,
        after: Option<JobId>,
        limit: u32,
    ) -> Result<Vec<JobSummary>> {
        dispatch!(self, s => s.tool_jobs_list(caller, after, limit))
    }
    async fn tool_recurring_list(
        &self,
        caller: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RecurringInfo>> {
        dispatch!(self, s => s.tool_recurring_list(caller, after, limit))
    }
    async fn tool_job_state(&self, caller: &str, id: JobId) -> Result<Option<JobState>> {
        dispatch!(self, s => s.tool_job_state(caller, id))
    }
    async fn tool_recurring_delete(&self, caller: &str, id: &str) -> Result<bool> {
        dispatch!(self, s => s.tool_recurring_delete(caller, id))
    }
}

impl BatchStore for AnyStorage {
    async fn batch_insert(
        &self,
        batch: &NewBatch,
        members: &[NewJob],
        fan_in: &[NewJob],
    ) -> Result<()> {
        dispatch!(self, s => s.batch_insert(batch, members, fan_in))
    }
    async fn batch_get(&self, id: JobId) -> Result<Option<StoredBatch>> {
        dispatch!(self, s => s.batch_get(id))
    }
    async fn batch_members(
        &self,
        id: JobId,
        after: Option<JobId>,
        limit: u32,
    ) -> Result<Vec<BatchMember>> {
        dispatch!(self, s => s.batch_members(id, after, limit))
    }
    async fn batch_of_fan_in(&self, fan_in: JobId) -> Result<Option<JobId>> {
        dispatch!(self, s => s.batch_of_fan_in(fan_in))
    }

    async fn batch_rearm(&self, id: JobId, now: DateTime<Utc>) -> Result<bool> {
        dispatch!(self, s => s.batch_rearm(id, now))
    }
}

impl RateStore for AnyStorage {
    async fn rate_window(&self, scope: &str, since: DateTime<Utc>) -> Result<RateWindow> {
        dispatch!(self, s => s.rate_window(scope, since))
    }
}
