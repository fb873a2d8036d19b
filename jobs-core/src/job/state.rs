//! The life cycle of a job.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a job is in its life. The names are JobRunr's, which its users know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobState {
    /// Waiting for its time. Set by the client when a job is enqueued with `.at(…)` or
    /// `.after(…)`, and by the server when a failed attempt is retried after a delay,
    /// when a job sleeps (`ctx.sleep`), and when it waits for an event
    /// (`ctx.wait_for_event`; its time is the wait's deadline). A server claims it once
    /// its time has come; [`Jobs::send_event`](crate::Jobs::send_event) moves a job
    /// waiting for that event to `Enqueued` before then.
    Scheduled,
    /// Ready to run now. Set by the client for a job enqueued without a time, by a
    /// requeue, by `send_event` for the jobs waiting for its event, and by a server
    /// that releases jobs at shutdown (or that finds, as a job goes to wait, that its
    /// event arrived meanwhile).
    Enqueued,
    /// Claimed by a server and running. Set by the server that claimed it; only that
    /// server (fenced by owner and attempt) moves it on, unless it stops heartbeating
    /// and another server rescues the job.
    Processing,
    /// Finished without error. Set by the server that ran it.
    Succeeded,
    /// Failed for good: retries exhausted, or a failure that retrying cannot fix
    /// (unknown job name, payload that does not decode). Set by the server.
    Failed,
    /// Deleted by a user; kept for a while so the dashboard can show it. Set by the client.
    Deleted,
    /// A continuation waiting for its parent to succeed. Set by the client.
    Awaiting,
}

impl JobState {
    /// Every state, in display order.
    pub const ALL: [JobState; 7] = [
        JobState::Awaiting,
        JobState::Scheduled,
        JobState::Enqueued,
        JobState::Processing,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Deleted,
    ];

    /// The name stored in the database and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Scheduled => "Scheduled",
            JobState::Enqueued => "Enqueued",
            JobState::Processing => "Processing",
            JobState::Succeeded => "Succeeded",
            JobState::Failed => "Failed",
            JobState::Deleted => "Deleted",
            JobState::Awaiting => "Awaiting",
        }
    }

    /// Whether the job is done and will not run again unless someone requeues it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Deleted
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is not one of [`JobState`]'s.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown job state `{0}`")]
pub struct UnknownState(pub String);

impl FromStr for JobState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}
