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
mod id;
mod job;
mod record;
mod recurring;
mod retry;
mod schedule;
mod server;
mod state;
mod storage;
mod transactional;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use client::{Enqueue, Jobs, JobsBuilder};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Result};
pub use id::JobId;
pub use job::{
    Failure, FromInvocation, Invocation, Job, JobContext, JobDescriptor, RunFn, State, StateMap,
    registered_jobs,
};
pub use record::{
    ErrorInfo, HistoryEntry, JobInfo, JobQuery, JobSummary, Page, ServerInfo, ThroughputPoint,
};
pub use recurring::{
    JobTemplate, RecurringDescriptor, RecurringInfo, RecurringSource, ScheduleRecurring,
    declared_recurring,
};
pub use retry::{DEFAULT_RETRIES, backoff};
pub use schedule::{MissedTicks, Schedule, ScheduleError, parse_cron, parse_interval, parse_zone};
pub use server::{JobServer, JobServerBuilder, ServerConfig};
pub use state::{JobState, UnknownState};
pub use transactional::EnqueueConnection;
