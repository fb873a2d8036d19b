//! The read models and claimed rows, mapped once from a row of either backend.
//!
//! What differs between the backends is how a time, a job id or a counter is stored;
//! each backend says so in its `rows.rs` by implementing [`StoredRow`] for its row type.
//! Every other column reads the same on both.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::stored::{requeueable, stored_error, stored_json};
use super::types::{ClaimedJob, ExpiredJob, Requeue};
use crate::job::info::{
    AwaitedEvent, HistoryEntry, JobInfo, JobSummary, LogEntry, LogLevel, Progress, ServerInfo,
};
use crate::recurring::{RecurringInfo, RecurringSource};
use crate::{Error, JobId, JobState, MissedTicks, Result};

/// A column read as `T`, where both backends store `T` the same way.
pub(crate) trait Column<T> {
    fn column(&self, name: &str) -> Result<T>;
}

impl<R, T> Column<T> for R
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    T: for<'r> Decode<'r, R::Database> + Type<R::Database>,
{
    fn column(&self, name: &str) -> Result<T> {
        Ok(self.try_get(name)?)
    }
}

/// A row of one backend: the columns stored alike, and how it stores the others.
pub(crate) trait StoredRow:
    Column<String>
    + Column<Option<String>>
    + Column<bool>
    + Column<i32>
    + Column<i64>
    + Column<Option<i64>>
{
    fn time(&self, column: &str) -> Result<DateTime<Utc>>;

    fn time_opt(&self, column: &str) -> Result<Option<DateTime<Utc>>>;

    /// A job id; one that does not read as an id is an error.
    fn job_id(&self, column: &str) -> Result<JobId>;

    /// A job id that may be missing; one that does not read as an id counts as missing.
    fn job_id_opt(&self, column: &str) -> Result<Option<JobId>>;

    /// A counter (an attempt, a number of workers); out of range reads as 0.
    fn count(&self, column: &str) -> Result<u32>;

    /// The `max_retries` column.
    fn max_retries(&self) -> Result<Option<u32>>;

    /// Text whatever bytes it holds: SQLite keeps what a hand-written statement puts in
    /// a `TEXT` column, and a payload that is not UTF-8 must fail its job (it does not
    /// decode), not the claim of every job beside it. Bytes that are not UTF-8 read as
    /// U+FFFD.
    fn text_lossy(&self, column: &str) -> Result<String>;
}

/// A job state stored by name.
pub(crate) fn state(row: &impl StoredRow, column: &str) -> Result<JobState> {
    let text: String = row.column(column)?;
    JobState::from_str(&text).map_err(|error| Error::Database(sqlx::Error::Decode(error.into())))
}

/// The labels, stored as a JSON array; unreadable ones read as none.
/// Why a requeue did not move the job, from its row as it is now (`state`, `owner`), or
/// `None` when there is no such job: not requeueable in its state, or a requeueable
/// state with an attempt still live.
pub(crate) fn requeue_refusal(row: Option<&impl StoredRow>) -> Result<Requeue> {
    let Some(row) = row else {
        return Ok(Requeue::NotFound);
    };
    Ok(match state(row, "state")? {
        stored if !requeueable(stored) => Requeue::NotRequeueable(stored),
        _ => Requeue::StillRunning {
            server: Column::<Option<String>>::column(row, "owner")?.unwrap_or_default(),
        },
    })
}

pub(crate) fn labels(row: &impl StoredRow) -> Result<Vec<String>> {
    let labels: String = row.column("labels")?;
    Ok(serde_json::from_str(&labels).unwrap_or_default())
}

/// The progress, when both of its parts are stored.
pub(crate) fn progress(row: &impl StoredRow) -> Result<Option<Progress>> {
    let done: Option<i64> = row.column("progress_done")?;
    let total: Option<i64> = row.column("progress_total")?;
    Ok(done.zip(total).map(|(done, total)| Progress {
        done: done.try_into().unwrap_or(0),
        total: total.try_into().unwrap_or(0),
    }))
}

pub(crate) fn summary(row: &impl StoredRow) -> Result<JobSummary> {
    Ok(JobSummary {
        id: row.job_id("id")?,
        name: row.column("name")?,
        display_name: row.column("display_name")?,
        state: state(row, "state")?,
        queue: row.column("queue")?,
        attempt: row.count("attempt")?,
        run_at: row.time("run_at")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
        labels: labels(row)?,
        progress: progress(row)?,
    })
}

/// A job row with its history and log lines, read separately.
/// A `jobs_pause` row.
pub(crate) fn paused(row: &impl StoredRow) -> Result<crate::Paused> {
    let kind: String = row.column("kind")?;
    Ok(crate::Paused {
        kind: if kind == "job" {
            crate::PauseKind::Job
        } else {
            crate::PauseKind::Queue
        },
        name: row.column("name")?,
        by: row.column("paused_by")?,
        at: row.time("paused_at")?,
    })
}

pub(crate) fn job_info(
    row: &impl StoredRow,
    id: JobId,
    history: Vec<HistoryEntry>,
    logs: Vec<LogEntry>,
) -> Result<JobInfo> {
    let payload = row.text_lossy("payload")?;
    Ok(JobInfo {
        id,
        name: row.column("name")?,
        display_name: row.column("display_name")?,
        payload: stored_json(payload),
        state: state(row, "state")?,
        queue: row.column("queue")?,
        priority: row.column("priority")?,
        attempt: row.count("attempt")?,
        max_retries: row.max_retries()?,
        run_at: row.time("run_at")?,
        owner: row.column("owner")?,
        last_error: row.column("last_error")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
        history,
        labels: labels(row)?,
        parent_id: row.job_id_opt("parent_id")?,
        batch_id: row
            .job_id_opt("batch_id")?
            .map(|id| crate::BatchId::from(id.as_uuid())),
        progress: progress(row)?,
        logs,
        result: Column::<Option<String>>::column(row, "result")?.map(stored_json),
        waiting_for_server: row.column("waiting_for_server")?,
        waiting_for_event: awaited_event(row)?,
    })
}

/// The event a `Scheduled` job waits for: `wait_name`, `wait_key`, and `run_at` as its
/// deadline.
fn awaited_event(row: &impl StoredRow) -> Result<Option<AwaitedEvent>> {
    if state(row, "state")? != JobState::Scheduled {
        return Ok(None);
    }
    let name: Option<String> = row.column("wait_name")?;
    let key: Option<String> = row.column("wait_key")?;
    let Some((name, key)) = name.zip(key) else {
        return Ok(None);
    };
    Ok(Some(AwaitedEvent {
        name,
        key,
        until: row.time("run_at")?,
    }))
}

/// A history row: `at, state, attempt, server, message, sources, backtrace`.
pub(crate) fn history_entry(row: &impl StoredRow) -> Result<HistoryEntry> {
    let message: Option<String> = row.column("message")?;
    let sources: Option<String> = row.column("sources")?;
    let backtrace: Option<String> = row.column("backtrace")?;
    Ok(HistoryEntry {
        at: row.time("at")?,
        state: state(row, "state")?,
        attempt: row.count("attempt")?,
        server: row.column("server")?,
        error: stored_error(message, sources, backtrace),
    })
}

/// A log line: `at, attempt, level, message`.
pub(crate) fn log_entry(row: &impl StoredRow) -> Result<LogEntry> {
    let level: String = row.column("level")?;
    Ok(LogEntry {
        at: row.time("at")?,
        attempt: row.count("attempt")?,
        level: LogLevel::from_stored(&level),
        message: row.column("message")?,
    })
}

/// A claimed job: `id, name, payload, attempt, max_retries, queue, run_at, token, ahead,
/// trace_context`.
pub(crate) fn claimed_job(row: &impl StoredRow) -> Result<ClaimedJob> {
    Ok(ClaimedJob {
        id: row.job_id("id")?,
        name: row.column("name")?,
        payload: row.text_lossy("payload")?,
        attempt: row.count("attempt")?,
        max_retries: row.max_retries()?,
        queue: row.column("queue")?,
        run_at: row.time("run_at")?,
        token: row.column("token")?,
        ahead: row.column("ahead")?,
        trace_context: row.column("trace_context")?,
    })
}

/// A job whose lease ran out: `id, owner, token, attempt, ahead, rescues`.
pub(crate) fn expired_job(row: &impl StoredRow) -> Result<ExpiredJob> {
    let owner: Option<String> = row.column("owner")?;
    Ok(ExpiredJob {
        id: row.job_id("id")?,
        owner: owner.unwrap_or_default(),
        token: row.column("token")?,
        attempt: row.count("attempt")?,
        ahead: row.column("ahead")?,
        rescues: row.count("rescues")?,
    })
}

pub(crate) fn server_info(row: &impl StoredRow) -> Result<ServerInfo> {
    let pid: i64 = row.column("pid")?;
    let jobs: Option<String> = row.column("jobs")?;
    let queues: Option<String> = row.column("queues")?;
    Ok(ServerInfo {
        id: row.column("id")?,
        name: row.column("name")?,
        host: row.column("host")?,
        pid: pid.try_into().unwrap_or(0),
        workers: row.count("workers")?,
        running: row.count("running")?,
        started_at: row.time("started_at")?,
        heartbeat_at: row.time("heartbeat_at")?,
        jobs: jobs.and_then(|jobs| serde_json::from_str(&jobs).ok()),
        queues: queues.and_then(|queues| serde_json::from_str(&queues).ok()),
    })
}

pub(crate) fn recurring_info(row: &impl StoredRow) -> Result<RecurringInfo> {
    let payload: String = row.column("payload")?;
    let missed: String = row.column("missed")?;
    let source: String = row.column("source")?;
    Ok(RecurringInfo {
        id: row.column("id")?,
        schedule: row.column("schedule")?,
        zone: row.column("zone")?,
        job_name: row.column("job_name")?,
        display_name: row.column("display_name")?,
        payload: stored_json(payload),
        max_retries: row.max_retries()?,
        labels: labels(row)?,
        missed: MissedTicks::from_stored(&missed),
        allow_overlap: row.column("allow_overlap")?,
        enabled: row.column("enabled")?,
        disabled_reason: row.column("disabled_reason")?,
        source: RecurringSource::from_stored(&source),
        next_run_at: row.time("next_run_at")?,
        last_run_at: row.time_opt("last_run_at")?,
        last_job_id: row.job_id_opt("last_job_id")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
        error: row.column("error")?,
        application: row.column("application")?,
    })
}
