//! Durable background jobs for Rust services and AI agents.
//!
//! Annotate an async fn with `#[job]`, enqueue it now, at a time or after a delay, and a
//! [`JobServer`](jobs_core) runs it with retries; jobs live in SQLite (the default) or
//! PostgreSQL and survive restarts, deploys and crashes.

pub use jobs_core::*;

#[cfg(feature = "macros")]
pub use jobs_macros::{job, recurring};

/// The axum plugin: boot from settings, `State<Jobs>` in handlers, graceful shutdown,
/// and the dashboard.
#[cfg(feature = "axum")]
pub use jobs_axum as axum;

/// Everything an application needs in one import: `use jobs::prelude::*;`.
///
/// The `Job` trait comes in anonymously (`Job as _`): its methods are in scope, but
/// its name does not clash with a `Job` of your own or of another glob import. Name
/// it as `jobs::Job` where you need it in a bound.
pub mod prelude {
    pub use jobs_core::Job as _;
    pub use jobs_core::{BatchResults, JobContext, JobId, JobState, Parent, State};
    #[cfg(feature = "macros")]
    pub use jobs_macros::{job, recurring};
}
