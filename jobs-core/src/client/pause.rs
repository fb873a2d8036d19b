//! Pausing queues and job names cluster-wide, from any client.
//!
//! A pause is a row of `jobs_pause`; every server reads them at least once a poll
//! interval (at its next claim for a pause made in its own process) and claims nothing
//! of a paused queue or job name. A claim already under way when the pause lands may
//! still take the queue's jobs; [`JobServer::paused_queues`](crate::JobServer::paused_queues)
//! shows when a server has the pause in its view. Jobs already running go on; those
//! waiting stay where they are, visible, until the pause is lifted.

use super::Jobs;
use crate::job::info::{PauseKind, Paused};
use crate::storage::AdminStore;
use crate::{Error, Result};

impl Jobs {
    /// Pauses `queue` on every server: none of its jobs starts until
    /// [`resume_queue`](Self::resume_queue). `by` says who paused it (shown on the
    /// dashboard); pausing a paused queue again updates who and when.
    ///
    /// ```no_run
    /// # async fn demo(jobs: jobs_core::Jobs) -> jobs_core::Result<()> {
    /// // The email provider is down: stop sending now, resume when it is back.
    /// jobs.pause_queue("email", "oncall@example.com").await?;
    /// # Ok(()) }
    /// ```
    pub async fn pause_queue(&self, queue: &str, by: &str) -> Result<()> {
        jobs_grammar::check_queue_name(queue)
            .map_err(|error| Error::Config(format!("cannot pause queue: {error}")))?;
        self.pause(PauseKind::Queue, queue, by).await
    }

    /// Lets the jobs of a paused queue start again; → whether it was paused.
    pub async fn resume_queue(&self, queue: &str) -> Result<bool> {
        self.resume(PauseKind::Queue, queue).await
    }

    /// Pauses every job of the registered name `name` (`JobDescriptor::name`), whatever
    /// its queue, on every server, until [`resume_job`](Self::resume_job).
    pub async fn pause_job(&self, name: &str, by: &str) -> Result<()> {
        if name.trim().is_empty() {
            return Err(Error::Config(
                "cannot pause a job name that is empty: give the registered job name".into(),
            ));
        }
        self.pause(PauseKind::Job, name, by).await
    }

    /// Lets the jobs of a paused job name start again; → whether it was paused.
    pub async fn resume_job(&self, name: &str) -> Result<bool> {
        self.resume(PauseKind::Job, name).await
    }

    /// Every paused queue (first) and job name, with who paused it and when.
    pub async fn paused(&self) -> Result<Vec<Paused>> {
        self.inner.storage.pauses_list().await
    }

    async fn pause(&self, kind: PauseKind, name: &str, by: &str) -> Result<()> {
        self.inner
            .storage
            .pause_set(kind, name, by, self.now())
            .await?;
        self.notify_paused();
        Ok(())
    }

    async fn resume(&self, kind: PauseKind, name: &str) -> Result<bool> {
        let resumed = self.inner.storage.pause_clear(kind, name).await?;
        if resumed {
            self.notify_paused();
            // Its waiting jobs are claimable again: wake the servers of this process.
            self.notify_enqueued();
        }
        Ok(resumed)
    }
}
