//! The runtime of [`jobs`](https://docs.rs/jobs): the job model, storage backends, the
//! client that enqueues and the server that runs jobs.
//!
//! Applications depend on the `jobs` facade crate, which re-exports this one together
//! with the `#[job]` and `#[recurring]` macros.

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!("jobs needs a storage backend: enable the `sqlite` or `postgres` feature");

mod chain;
mod client;
mod clock;
mod context;
mod error;
mod id;
mod job;
mod record;
mod recurring;
mod retry;
mod schedule;
mod server;
mod state;
mod storage;
mod tools;
mod transactional;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use chain::Chain;
pub use client::{Enqueue, Jobs, JobsBuilder};
pub use clock::{Clock, ManualClock, SystemClock};
pub use context::{JobContext, JobLog, JobLogLayer};
pub use error::{Error, Result};
pub use id::JobId;
pub use job::{
    DEFAULT_QUEUE, Failure, FromInvocation, Invocation, Job, JobDescriptor, RunFn, SchemaFn, State,
    StateMap, registered_jobs,
};
/// The rules for durations, cron expressions, zones and queue names that the macros
/// check at compile time; the variants of [`ScheduleError`] carry its errors.
pub use jobs_grammar as grammar;
pub use record::{
    ErrorInfo, HistoryEntry, JobInfo, JobQuery, JobSummary, LogEntry, LogLevel, Page, Progress,
    ServerInfo, ThroughputPoint,
};
pub use recurring::{
    JobTemplate, RecurringDescriptor, RecurringInfo, RecurringSource, ScheduleRecurring,
    declared_recurring,
};
pub use retry::{DEFAULT_RETRIES, backoff};
pub use schedule::{MissedTicks, Schedule, ScheduleError, parse_cron, parse_interval, parse_zone};
pub use server::{
    DURATION_BUCKETS, Histogram, JobMetrics, JobServer, JobServerBuilder, ServerConfig,
    ServerMetrics,
};
pub use state::{JobState, UnknownState};
pub use tools::{
    CANCEL_TOOL, LIST_TOOL, ScheduledJob, TOOL_CALL_LABEL, Tool, ToolCatalog, ToolError,
    ToolErrorKind, ToolResult,
};
pub use transactional::EnqueueConnection;
