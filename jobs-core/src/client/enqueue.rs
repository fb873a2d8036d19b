//! Enqueue one job or many: now, at a time, after a delay, under a dedupe id, or inside
//! the application's own transaction.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tracing::Instrument;

use super::chain::Chain;
use super::transactional::{self, EnqueueConnection};
use crate::storage::{LifecycleStore, NewJob};
use crate::{Job, JobId, JobState, Jobs, Result};

impl Jobs {
    /// Starts an enqueue of `job`: await it to run the job as soon as a worker is free,
    /// or set a time, a delay or a dedupe id first.
    pub fn enqueue<J: Job>(&self, job: J) -> Enqueue<'_, J> {
        Enqueue {
            jobs: self,
            job,
            run_at: None,
            id: None,
        }
    }

    /// Enqueues many jobs in one transaction, to run now; returns their ids in order.
    pub async fn enqueue_many<J: Job>(
        &self,
        jobs: impl IntoIterator<Item = J>,
    ) -> Result<Vec<JobId>> {
        let now = self.now();
        let rows = jobs
            .into_iter()
            .map(|job| new_job(&job, None, now, now))
            .collect::<Result<Vec<_>>>()?;
        self.inner.storage.jobs_insert(&rows).await?;
        self.notify_enqueued();
        Ok(rows.into_iter().map(|row| row.id).collect())
    }
}

/// The row that stores `job`, under `id`, or under a new id when `None`.
pub(crate) fn new_job<J: Job>(
    job: &J,
    id: Option<JobId>,
    now: DateTime<Utc>,
    run_at: DateTime<Utc>,
) -> Result<NewJob> {
    let descriptor = J::DESCRIPTOR;
    Ok(NewJob {
        id: id.unwrap_or_default(),
        name: descriptor.name().to_owned(),
        display_name: job.display_name(),
        payload: serde_json::to_string(job)?,
        state: if run_at > now {
            JobState::Scheduled
        } else {
            JobState::Enqueued
        },
        queue: descriptor.queue_name().to_owned(),
        priority: descriptor.priority_setting(),
        run_at,
        max_retries: descriptor.retries_setting(),
        created_at: now,
        recurring_id: None,
        parent_id: None,
        on_failure: false,
        labels: job.labels(),
        // The caller's trace; an enqueue that records its own span replaces it.
        trace_context: crate::telemetry::trace_context(&tracing::Span::current()),
        fresh_id: id.is_none(),
    })
}

/// An enqueue being built; `.await` it to store the job and get its id.
#[must_use = "an enqueue does nothing until it is awaited"]
pub struct Enqueue<'a, J> {
    jobs: &'a Jobs,
    job: J,
    run_at: Option<DateTime<Utc>>,
    id: Option<JobId>,
}

impl<J: fmt::Debug> fmt::Debug for Enqueue<'_, J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enqueue")
            .field("job", &self.job)
            .field("run_at", &self.run_at)
            .field("id", &self.id)
            .finish()
    }
}

impl<'a, J: Job> Enqueue<'a, J> {
    /// Runs the job at `at` (in any time zone), not before.
    pub fn at<Tz: TimeZone>(mut self, at: DateTime<Tz>) -> Self {
        self.run_at = Some(at.with_timezone(&Utc));
        self
    }

    /// Runs the job once `delay` has passed.
    pub fn after(mut self, delay: Duration) -> Self {
        let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        self.run_at = Some(
            self.jobs
                .now()
                .checked_add_signed(delay)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        );
        self
    }

    /// Gives the job this id. If a job with this id exists already, the enqueue creates
    /// nothing and returns the id: use [`JobId::from_key`] for "at most once per key".
    pub fn id(mut self, id: JobId) -> Self {
        self.id = Some(id);
        self
    }

    /// Stores the job through the application's own transaction instead of on its own:
    /// the job exists only if that transaction commits, and a server starts it only after
    /// the commit. Pass `&mut tx` (a `sqlx::Transaction`) or a connection of the client's
    /// backend on the same database; another backend's connection is an error.
    ///
    /// ```no_run
    /// # #[cfg(feature = "sqlite")]
    /// # async fn demo<J: jobs_core::Job>(jobs: jobs_core::Jobs, pool: sqlx::SqlitePool, job: J) -> jobs_core::Result<()> {
    /// let mut tx = pool.begin().await?;
    /// // … the application's own writes …
    /// jobs.enqueue(job).within(&mut tx).await?;
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn within<C: EnqueueConnection + ?Sized>(self, conn: &mut C) -> Result<JobId> {
        let (id, row) = self.row()?;
        transactional::jobs_insert(&self.jobs.inner.storage, conn, &[row]).await?;
        // Servers of this process wake now and find nothing until the commit: on SQLite
        // their claim waits for the caller's write lock, on PostgreSQL the commit notifies.
        self.jobs.notify_enqueued();
        Ok(id)
    }

    /// Runs `next` after this job succeeds, as its own job with its own retries. Await
    /// the chain to get every id, in the order given.
    pub fn then<K: Job>(self, next: K) -> Chain<'a> {
        Chain::new(self.jobs, self.row().map(|(_, row)| row)).then(next)
    }

    /// Runs `job` if this job fails for good (retries exhausted).
    pub fn on_failure<K: Job>(self, job: K) -> Chain<'a> {
        Chain::new(self.jobs, self.row().map(|(_, row)| row)).on_failure(job)
    }

    fn row(&self) -> Result<(JobId, NewJob)> {
        let now = self.jobs.now();
        let row = new_job(&self.job, self.id, now, self.run_at.unwrap_or(now))?;
        Ok((row.id, row))
    }

    async fn send(self) -> Result<JobId> {
        let (id, mut row) = self.row()?;
        // The enqueue as a span of the caller's trace: a request's trace shows the
        // jobs it enqueued.
        let span = tracing::info_span!(
            "job.enqueue",
            job.id = %id,
            job.name = %row.name,
            job.queue = %row.queue,
            job.run_at = %row.run_at,
        );
        // The job's runs continue the trace from this span (see `crate::telemetry`).
        row.trace_context = crate::telemetry::trace_context(&span);
        self.jobs
            .inner
            .storage
            .jobs_insert(&[row])
            .instrument(span)
            .await?;
        self.jobs.notify_enqueued();
        Ok(id)
    }
}

impl<'a, J: Job> IntoFuture for Enqueue<'a, J> {
    type Output = Result<JobId>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<JobId>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}
