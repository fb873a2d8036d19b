//! What the client reads back about jobs: a job's current row and its history.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{JobId, JobState};

/// Everything stored about one job: its current state and every transition so far.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct JobInfo {
    /// The job's id.
    pub id: JobId,
    /// The registered name of its type (`module::fn_name` or the pinned `name`).
    pub name: String,
    /// The name shown for this run, from the `display = "…"` template.
    pub display_name: String,
    /// The job's arguments as stored.
    pub payload: serde_json::Value,
    /// Where the job is now.
    pub state: JobState,
    /// The queue it runs in.
    pub queue: String,
    /// Higher runs first.
    pub priority: i32,
    /// How many attempts have started (1 while the first is running).
    pub attempt: u32,
    /// How many retries the job asked for; `None` means the server's default.
    pub max_retries: Option<u32>,
    /// When it may run (for a retry: when the next attempt is due).
    pub run_at: DateTime<Utc>,
    /// The server running it, while `Processing`.
    pub owner: Option<String>,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When its row last changed.
    pub updated_at: DateTime<Utc>,
    /// Every transition, oldest first.
    pub history: Vec<HistoryEntry>,
    /// Its labels.
    pub labels: Vec<String>,
    /// For a continuation: the job it waits for.
    pub parent_id: Option<JobId>,
    /// The batch it is a member of.
    pub batch_id: Option<crate::BatchId>,
    /// The progress it last reported.
    pub progress: Option<Progress>,
    /// What it logged, oldest first (capped per attempt).
    pub logs: Vec<LogEntry>,
    /// What it returned when it succeeded, as JSON; `None` when it returns nothing or
    /// has not succeeded. [`Jobs::result`](crate::Jobs::result) reads it typed.
    pub result: Option<serde_json::Value>,
    /// It waits (`Enqueued` or `Scheduled`) and no live server registers its name: it
    /// runs once a server that does starts ("no server registers `name`"), and fails
    /// if none does within the servers' `fail_unserved_after`. False while no server
    /// runs at all.
    pub waiting_for_server: bool,
    /// While it waits for an event (`ctx.wait_for_event`; state `Scheduled`): which,
    /// and until when.
    pub waiting_for_event: Option<AwaitedEvent>,
}

/// The event a job waits for, and its deadline: the job runs again when
/// [`Jobs::send_event`](crate::Jobs::send_event) sends it, or at `until` without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AwaitedEvent {
    /// The event's name.
    pub name: String,
    /// The event's key.
    pub key: String,
    /// When the wait times out.
    pub until: DateTime<Utc>,
}

/// How far a job has come, as it reported with `ctx.progress(done, total)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Units of work done.
    pub done: u64,
    /// Units of work in all.
    pub total: u64,
}

/// How important a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Detail for debugging.
    Debug,
    /// Normal progress.
    Info,
    /// Something unexpected the job worked around.
    Warn,
    /// Something failed.
    Error,
}

impl LogLevel {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }

    /// Reads a stored name; unknown ones read as `Info`.
    pub fn from_stored(text: &str) -> Self {
        match text {
            "debug" => LogLevel::Debug,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            _ => LogLevel::Info,
        }
    }
}

/// One line a job logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LogEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// In which attempt.
    pub attempt: u32,
    /// How important.
    pub level: LogLevel,
    /// What.
    pub message: String,
}

impl JobInfo {
    /// The errors of every failed attempt, oldest first.
    pub fn errors(&self) -> impl Iterator<Item = &ErrorInfo> {
        self.history.iter().filter_map(|entry| entry.error.as_ref())
    }
}

/// One transition in a job's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HistoryEntry {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The state the job moved to.
    pub state: JobState,
    /// The attempt it belongs to (0 before the first run).
    pub attempt: u32,
    /// The server that made the move, if a server did.
    pub server: Option<String>,
    /// For a failed attempt: what went wrong.
    pub error: Option<ErrorInfo>,
}

/// The error of one failed attempt, capped in size when stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ErrorInfo {
    /// The error's own message.
    pub message: String,
    /// The messages of its `source()` chain, outermost first.
    pub sources: Vec<String>,
    /// Where it happened: the backtrace of a panic inside the job or the one an
    /// `anyhow::Error` carried, cut at 16 KiB; `None` when none was captured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backtrace: Option<String>,
}

/// A job as listed on a page: its row without payload or history.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct JobSummary {
    /// The job's id.
    pub id: JobId,
    /// The registered name of its type.
    pub name: String,
    /// The name shown for this run.
    pub display_name: String,
    /// Where the job is now.
    pub state: JobState,
    /// The queue it runs in.
    pub queue: String,
    /// How many attempts have started.
    pub attempt: u32,
    /// When it may run.
    pub run_at: DateTime<Utc>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When its row last changed.
    pub updated_at: DateTime<Utc>,
    /// Its labels.
    pub labels: Vec<String>,
    /// The progress it last reported.
    pub progress: Option<Progress>,
}

/// Which jobs to list, newest first, a page at a time.
///
/// ```no_run
/// # async fn demo(jobs: jobs_core::Jobs) -> jobs_core::Result<()> {
/// use jobs_core::{JobQuery, JobState};
///
/// let mut query = JobQuery::state(JobState::Failed).name("documents.summarize").limit(50);
/// loop {
///     let page = jobs.list(query.clone()).await?;
///     for job in &page.items {
///         println!("{} {}", job.id, job.name);
///     }
///     let Some(next) = page.next else { break };
///     query = query.after(next);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobQuery {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs of this registered name.
    pub name: Option<String>,
    /// Only jobs whose display name or registered name contains this text, as it is
    /// written but for the case of ASCII letters (`%` and `_` are characters like any
    /// other).
    pub search: Option<String>,
    /// Only jobs with this label.
    pub label: Option<String>,
    /// Only the members of this batch.
    pub batch: Option<crate::BatchId>,
    /// Continue after this id (the last of the previous page).
    pub after: Option<JobId>,
    /// At most this many (capped at 1,000).
    pub limit: u32,
}

impl Default for JobQuery {
    fn default() -> Self {
        Self {
            state: None,
            name: None,
            search: None,
            label: None,
            batch: None,
            after: None,
            limit: 50,
        }
    }
}

impl JobQuery {
    /// Jobs in `state`.
    pub fn state(state: JobState) -> Self {
        Self {
            state: Some(state),
            ..Self::default()
        }
    }

    /// Sets the page size.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    /// Continues after `id`.
    pub fn after(mut self, id: JobId) -> Self {
        self.after = Some(id);
        self
    }

    /// Only jobs of this registered name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Only jobs whose display name or registered name contains `text`.
    pub fn search(mut self, text: impl Into<String>) -> Self {
        self.search = Some(text.into());
        self
    }

    /// Only jobs with this label.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Only the members of this batch.
    pub fn batch(mut self, batch: crate::BatchId) -> Self {
        self.batch = Some(batch);
        self
    }

    /// The `LIKE` pattern for `search`, with `%`, `_` and `\\` escaped by `\\`, its
    /// ASCII letters in lower case. Only those: the backends lower the column the same
    /// way (SQLite's `lower` knows no other letters, PostgreSQL's is asked for the `C`
    /// collation's), where lowering other scripts differs between them and Rust (`İ`).
    pub(crate) fn like_pattern(&self) -> Option<String> {
        self.search.as_ref().map(|text| {
            let mut pattern = String::with_capacity(text.len() + 2);
            pattern.push('%');
            for c in text.to_ascii_lowercase().chars() {
                if matches!(c, '%' | '_' | '\\') {
                    pattern.push('\\');
                }
                pattern.push(c);
            }
            pattern.push('%');
            pattern
        })
    }
}

/// What a pause holds: a whole queue, or every job of one registered name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PauseKind {
    /// A queue: no job of it starts.
    Queue,
    /// A job name: no job of it starts, whatever its queue.
    Job,
}

impl PauseKind {
    /// As stored: `queue` or `job`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queue => "queue",
            Self::Job => "job",
        }
    }
}

/// A queue or job name paused cluster-wide, with who paused it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Paused {
    /// A queue or a job name.
    pub kind: PauseKind,
    /// The queue's or the job's name.
    pub name: String,
    /// Who paused it, as the caller said.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A server as it last heartbeated.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ServerInfo {
    /// Its id: the owner stored on the jobs it runs.
    pub id: String,
    /// Its name (host and process id unless configured).
    pub name: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// How many jobs it runs at once.
    pub workers: u32,
    /// How many it was running at its last heartbeat.
    pub running: u32,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it last heartbeated.
    pub heartbeat_at: DateTime<Utc>,
    /// The job names it runs, sorted; `None` for a server of an older release, which
    /// does not say (it may run any name).
    pub jobs: Option<Vec<String>>,
    /// The queues it claims from and the limits it holds them to; `None` for a server
    /// of an older release, which does not say.
    pub queues: Option<ServerQueues>,
}

/// The queues a server claims from, and the limits it holds them to, as its settings
/// say (`queues`, `queue_limit`, `global_queue_limit`, `queue_rate`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServerQueues {
    /// The only queues it claims from; `None` for every queue.
    pub served: Option<Vec<String>>,
    /// Per queue, how many of its jobs this server runs at once at most.
    pub limits: BTreeMap<String, u64>,
    /// Per queue, how many of its jobs run at once across the cluster at most, as this
    /// server holds it (every server should say the same).
    pub global_limits: BTreeMap<String, u64>,
    /// Per queue, the rate its jobs start at across the cluster at most, as written
    /// (`50/1m`) and as this server holds it (every server should say the same). Absent
    /// from the rows of older releases.
    #[serde(default)]
    pub rates: BTreeMap<String, String>,
}

/// One queue as the dashboard shows it: its unfinished jobs by state, whether it is
/// paused, and the limits the servers declare for it, from
/// [`Jobs::queues`](crate::Jobs::queues).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct QueueInfo {
    /// The queue.
    pub queue: String,
    /// Jobs due and not claimed: `Enqueued`, or `Scheduled` with their time come.
    pub waiting: u64,
    /// Jobs `Scheduled` for later.
    pub scheduled: u64,
    /// Jobs `Processing`: running, or claimed ahead by a server.
    pub running: u64,
    /// Jobs `Failed` for good.
    pub failed: u64,
    /// Who paused it and when; `None` when it is not paused.
    pub paused: Option<QueuePause>,
    /// The limits of the servers that declare one for it, by server name.
    pub limits: Vec<QueueLimit>,
    /// Jobs due and not claimed because the queue's rate is used up: its `waiting`
    /// jobs while the starts within the rate's window have reached its count, else 0.
    pub rate_limited: u64,
}

/// Who paused a queue, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct QueuePause {
    /// Who paused it, as the caller said.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// The limits one server holds a queue to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct QueueLimit {
    /// The server's name.
    pub server: String,
    /// The server's id.
    pub server_id: String,
    /// How many of the queue's jobs it runs at once (`queue_limit`).
    pub local: Option<u64>,
    /// How many of them run at once across the cluster (`global_queue_limit`).
    pub global: Option<u64>,
    /// How many of them start per period across the cluster, as written (`queue_rate`).
    pub rate: Option<String>,
}

/// Finished attempts in one minute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ThroughputPoint {
    /// The start of the minute.
    pub minute: DateTime<Utc>,
    /// Attempts that succeeded.
    pub succeeded: u64,
    /// Attempts that failed, whether retried or not.
    pub failed: u64,
}

/// The jobs of one queue that are due and wait for a server, from
/// [`Jobs::waiting_by_queue`](crate::Jobs::waiting_by_queue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct QueueWaiting {
    /// The queue.
    pub queue: String,
    /// Jobs due (`Enqueued`, or `Scheduled` with their time come) and not yet claimed.
    pub waiting: u64,
    /// When the longest-waiting of them became due.
    pub oldest_due: DateTime<Utc>,
}

/// A job name with jobs due while no server registered in the database runs it, from
/// [`Jobs::unserved`](crate::Jobs::unserved): a build that knows the name is not
/// deployed (yet), or `only_jobs` leaves it out everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Unserved {
    /// The job name no server registers.
    pub name: String,
    /// Its jobs due and not claimed.
    pub waiting: u64,
    /// When the longest-waiting of them became due; it fails when it has waited
    /// `fail_unserved_after` past this.
    pub oldest_due: DateTime<Utc>,
}

/// One page of a listing.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Page<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next: Option<JobId>,
}
