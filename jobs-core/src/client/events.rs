//! Events sent to jobs that wait for them ([`JobContext::wait_for_event`]).
//!
//! [`JobContext::wait_for_event`]: crate::JobContext::wait_for_event

use std::time::Duration;

use serde::Serialize;

use super::Jobs;
use crate::Result;
use crate::storage::{EventWait, SignalStore, kept_since};

/// How long a sent event is kept for waits that begin after it was sent: seven days.
/// A wait that begins later than that does not see it; servers prune older events.
pub const EVENT_RETENTION: Duration = Duration::from_secs(7 * 86_400);

impl Jobs {
    /// Sends the event `name` with `key` and `payload` to the jobs waiting for it
    /// ([`JobContext::wait_for_event`](crate::JobContext::wait_for_event) with that
    /// name and key): each of them is resumed now, and its wait returns `payload`.
    /// Returns how many were waiting; 0 is no error, since the event is kept for
    /// [`EVENT_RETENTION`] and a wait that begins later sees it.
    ///
    /// ```no_run
    /// # async fn demo(jobs: jobs_core::Jobs) -> jobs_core::Result<()> {
    /// #[derive(serde::Serialize)]
    /// struct Approval { by: String }
    /// let resumed = jobs
    ///     .send_event("approval", "draft-42", &Approval { by: "ada".into() })
    ///     .await?;
    /// # let _ = resumed; Ok(()) }
    /// ```
    ///
    /// The store and the resumption of the waiting jobs are one transaction: a job that
    /// is just going to wait (its wait checked for the event a moment before this) is
    /// resumed all the same, once its wait is stored. Every job waiting for the event
    /// is resumed; none consumes it.
    pub async fn send_event(&self, name: &str, key: &str, payload: &impl Serialize) -> Result<u64> {
        let payload = serde_json::to_string(payload)?;
        let wait = EventWait {
            name: name.to_owned(),
            key: key.to_owned(),
        };
        let now = self.now();
        let resumed = self
            .storage()
            .signal_send(&wait, &payload, kept_since(now), now)
            .await?;
        if resumed > 0 {
            self.notify_enqueued();
        }
        Ok(resumed)
    }
}
