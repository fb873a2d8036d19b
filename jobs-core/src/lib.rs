//! The runtime of [`jobs`](https://docs.rs/jobs): the job model, storage backends, the
//! client that enqueues and the server that runs jobs.
//!
//! Applications depend on the `jobs` facade crate, which re-exports this one together
//! with the `#[job]` and `#[recurring]` macros.

mod clock;
mod error;
mod id;
mod job;
mod state;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Result};
pub use id::JobId;
pub use job::{
    FromInvocation, Invocation, Job, JobContext, JobDescriptor, RunFn, State, StateMap,
    registered_jobs, Failure,
};
pub use state::{JobState, UnknownState};
