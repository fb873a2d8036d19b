//! The runtime of [`jobs`](https://docs.rs/jobs): the job model, storage backends, the
//! client that enqueues and the server that runs jobs.
//!
//! Applications depend on the `jobs` facade crate, which re-exports this one together
//! with the `#[job]` and `#[recurring]` macros.

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!("jobs needs a storage backend: enable the `sqlite` or `postgres` feature");

mod client;
mod clock;
mod error;
mod job;
mod recurring;
mod server;
mod storage;
mod telemetry;
pub mod testing;
mod tools;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use client::batch::{Batch, BatchStatus};
pub use client::chain::Chain;
pub use client::transactional::EnqueueConnection;
pub use client::{
    ConnectOptions, EVENT_RETENTION, Enqueue, Enqueued, Jobs, JobsBuilder, SqliteSynchronous,
};
pub use clock::{Clock, ManualClock, SkewedClock, SystemClock};
pub use error::{Error, Result};
pub use job::context::{JobContext, JobLog, JobLogLayer};
pub use job::id::{BatchId, JobId};
pub use job::info::{
    AwaitedEvent, ErrorInfo, HistoryEntry, JobInfo, JobQuery, JobSummary, LogEntry, LogLevel, Page,
    PauseKind, Paused, Progress, QueueInfo, QueueLimit, QueuePause, QueueWaiting, ServerInfo,
    ServerQueues, ThroughputPoint, Unserved,
};
pub use job::retry::{DEFAULT_RETRIES, backoff};
pub use job::state::{JobState, UnknownState};
pub use job::{
    BatchResults, DEFAULT_QUEUE, Failure, FromInvocation, Invocation, Job, JobDescriptor, JobError,
    KeyFn, Parent, RunFn, SchemaFn, State, StateMap, Unique, UniqueStates, registered_jobs,
};
/// The rules for durations, cron expressions, zones and queue names that the macros
/// check at compile time; the variants of [`ScheduleError`] carry its errors.
pub use jobs_grammar as grammar;
pub use jobs_grammar::{BackoffPolicy, Rate, RateError};
pub use recurring::schedule::{
    MissedTicks, Schedule, ScheduleError, parse_cron, parse_interval, parse_zone,
};
pub use recurring::{
    AddRecurring, JobTemplate, Recurring, RecurringDescriptor, RecurringInfo, RecurringSource,
    declared_recurring,
};
pub use server::{
    DURATION_BUCKETS, Histogram, InvalidSetting, JobMetrics, JobServer, JobServerBuilder,
    ServerConfig, ServerMetrics, describe_metrics, metric_names,
};
pub use tools::{
    DEFAULT_MAX_PENDING_JOBS, DEFAULT_MAX_RECURRING_JOBS, DELETE_TOOL, LIST_TOOL, Quota,
    QuotaExceeded, TOOL_CALL_LABEL, Tool, ToolCatalog, ToolError, ToolErrorKind, ToolRecurring,
    ToolResult,
};
