//! Enqueue one job or many: now, at a time, after a delay, under a dedupe id, unique by
//! its arguments, or inside the application's own transaction.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tracing::Instrument;

use super::chain::Chain;
use super::transactional::{self, EnqueueConnection};
use crate::job::unique::{canonical_arguments, stored_key};
use crate::storage::{Admitted, LifecycleStore, NewJob, UniqueClaim};
use crate::{Job, JobId, JobState, Jobs, Result, Unique};

impl Jobs {
    /// Starts an enqueue of `job`: await it to run the job as soon as a worker is free,
    /// or set a time, a delay or a dedupe id first.
    pub fn enqueue<J: Job>(&self, job: J) -> Enqueue<'_, J> {
        Enqueue {
            jobs: self,
            job,
            run_at: None,
            id: None,
            unique: J::DESCRIPTOR.unique_setting(),
            replace: false,
            concurrency_key: None,
        }
    }

    /// Enqueues many jobs in one transaction, to run now; returns their ids in order.
    ///
    /// For a unique job type (`#[job(unique = "…")]`) each job is checked as
    /// [`enqueue`](Self::enqueue) checks it: a duplicate's id is that of the job that
    /// holds its key, and of several jobs of the batch with one key the first is stored
    /// and the others answer its id.
    pub async fn enqueue_many<J: Job>(
        &self,
        jobs: impl IntoIterator<Item = J>,
    ) -> Result<Vec<JobId>> {
        let now = self.now();
        let unique = J::DESCRIPTOR.unique_setting();
        let rows = jobs
            .into_iter()
            .map(|job| {
                let mut row = new_job(&job, None, now, now)?;
                row.unique = unique_claim(&job, &row, unique, false);
                Ok(row)
            })
            .collect::<Result<Vec<_>>>()?;
        if unique.is_none() {
            self.inner.storage.jobs_insert(&rows).await?;
            self.notify_enqueued();
            return Ok(rows.into_iter().map(|row| row.id).collect());
        }
        let admitted = self.inner.storage.jobs_admit(&rows).await?;
        self.notify_enqueued();
        Ok(rows
            .iter()
            .zip(admitted)
            .map(|(row, admitted)| Enqueued::from_admitted(row.id, admitted).id())
            .collect())
    }
}

/// What an enqueue did, from [`Enqueue::outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// The job was stored under this id; for an enqueue under a given id
    /// ([`Enqueue::id`]), also when a job had that id already.
    Created(JobId),
    /// The job is unique and this job holds its key: created within the window, in a
    /// state that counts. Nothing was stored.
    Duplicate(JobId),
    /// The job is unique, this job held its key and had not started, and the enqueue
    /// asked to [`replace`](Enqueue::replace) it: it now runs at the new time with the
    /// new arguments. Nothing else was stored.
    Replaced(JobId),
}

impl Enqueued {
    /// The id of the job that runs: the new one, or the one that held the key.
    pub fn id(self) -> JobId {
        match self {
            Self::Created(id) | Self::Duplicate(id) | Self::Replaced(id) => id,
        }
    }

    /// Whether a job was already there (a duplicate, replaced or not).
    pub fn is_duplicate(self) -> bool {
        !matches!(self, Self::Created(_))
    }

    /// The answer for a job inserted under `id`.
    pub(crate) fn from_admitted(id: JobId, admitted: Admitted) -> Self {
        match admitted {
            Admitted::Stored | Admitted::Skipped => Self::Created(id),
            Admitted::Duplicate(holder) => Self::Duplicate(holder),
            Admitted::Replaced(holder) => Self::Replaced(holder),
        }
    }
}

/// The unique key `row` (made from `job`) is inserted under, when `unique` is set: the
/// rendered `unique_key`, or the arguments in canonical form, with the job's name.
pub(crate) fn unique_claim<J: Job>(
    job: &J,
    row: &NewJob,
    unique: Option<Unique>,
    replace: bool,
) -> Option<UniqueClaim> {
    let unique = unique?;
    let key = job
        .unique_key()
        .unwrap_or_else(|| canonical_arguments(&row.payload));
    let window = chrono::Duration::from_std(unique.window()).unwrap_or(chrono::Duration::MAX);
    Some(UniqueClaim {
        key: stored_key(&row.name, &key),
        until: row
            .created_at
            .checked_add_signed(window)
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
        states: unique.counted_states(),
        replace,
    })
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
        batch_id: None,
        labels: job.labels(),
        // The caller's trace; an enqueue that records its own span replaces it.
        trace_context: crate::telemetry::trace_context(&tracing::Span::current()),
        fresh_id: id.is_none(),
        unique: None,
        concurrency: job
            .concurrency_key()
            .and_then(|key| descriptor.key_limits(key)),
    })
}

/// An enqueue being built; `.await` it to store the job and get its id.
#[must_use = "an enqueue does nothing until it is awaited"]
pub struct Enqueue<'a, J> {
    jobs: &'a Jobs,
    job: J,
    run_at: Option<DateTime<Utc>>,
    id: Option<JobId>,
    unique: Option<Unique>,
    replace: bool,
    concurrency_key: Option<String>,
}

impl<J: fmt::Debug> fmt::Debug for Enqueue<'_, J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enqueue")
            .field("job", &self.job)
            .field("run_at", &self.run_at)
            .field("id", &self.id)
            .field("unique", &self.unique)
            .field("replace", &self.replace)
            .field("concurrency_key", &self.concurrency_key)
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

    /// Makes this enqueue unique as `unique` says, whatever the job type's
    /// `#[job(unique = "…")]`: a job of the same name and arguments (or `unique_key`)
    /// created within the window, in a state that counts, answers instead of a new one.
    pub fn unique(mut self, unique: Unique) -> Self {
        self.unique = Some(unique);
        self
    }

    /// Makes this enqueue unique for `window` after the first job's creation, counting
    /// the states the job type counts (by default, all but failed and deleted jobs).
    pub fn unique_for(mut self, window: Duration) -> Self {
        let states = self
            .unique
            .map(|unique| unique.counted_states())
            .unwrap_or_default();
        self.unique = Some(Unique::within(window).states(states));
        self
    }

    /// Stores a new job even if the job type is unique.
    pub fn not_unique(mut self) -> Self {
        self.unique = None;
        self
    }

    /// For a unique enqueue whose key a job holds that has not started (never claimed,
    /// not awaiting a parent): gives that job this enqueue's time and arguments instead
    /// of leaving it as it is, and answers its id ([`Enqueued::Replaced`]). A debounce:
    /// `jobs.enqueue(job).after(delay).replace()` moves the waiting job's time on.
    /// Without uniqueness it changes nothing.
    pub fn replace(mut self) -> Self {
        self.replace = true;
        self
    }

    /// For a job type with `#[job(concurrency_key = "…")]`: counts this run under `key`
    /// instead of the key its arguments render, with the type's `concurrency`. A job
    /// type without a concurrency key has no partitioned limit, and this changes nothing.
    pub fn concurrency_key(mut self, key: impl Into<String>) -> Self {
        self.concurrency_key = Some(key.into());
        self
    }

    /// Stores the job as awaiting the enqueue does, and says whether a unique job's
    /// duplicate answered instead.
    ///
    /// ```no_run
    /// # async fn demo<J: jobs_core::Job>(jobs: jobs_core::Jobs, job: J) -> jobs_core::Result<()> {
    /// use jobs_core::Enqueued;
    /// match jobs.enqueue(job).outcome().await? {
    ///     Enqueued::Created(id) => println!("new job {id}"),
    ///     Enqueued::Duplicate(id) | Enqueued::Replaced(id) => println!("already there: {id}"),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn outcome(self) -> Result<Enqueued> {
        self.send().await
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
    ///
    /// A unique job is checked in that transaction; its key stays taken (and other
    /// enqueues of it wait) until the transaction ends.
    pub async fn within<C: EnqueueConnection + ?Sized>(self, conn: &mut C) -> Result<JobId> {
        let (id, row) = self.row()?;
        let id = if row.unique.is_some() {
            let admitted =
                transactional::jobs_admit(&self.jobs.inner.storage, conn, &[row]).await?;
            Enqueued::from_admitted(id, admitted[0]).id()
        } else {
            transactional::jobs_insert(&self.jobs.inner.storage, conn, &[row]).await?;
            id
        };
        // Servers of this process wake now and find nothing until the commit: on SQLite
        // their claim waits for the caller's write lock, on PostgreSQL the commit notifies.
        self.jobs.notify_enqueued();
        Ok(id)
    }

    /// Runs `next` after this job succeeds, as its own job with its own retries. Await
    /// the chain to get every id, in the order given.
    ///
    /// Only the first job of a chain is checked for uniqueness. When it is a duplicate
    /// the chain stores nothing and answers the existing job's id, then the ids its
    /// continuations have under it: those of the existing chain, when that was
    /// enqueued the same way.
    pub fn then<K: Job>(self, next: K) -> Chain<'a> {
        self.chain().then(next)
    }

    /// Runs `job` if this job fails for good (retries exhausted).
    pub fn on_failure<K: Job>(self, job: K) -> Chain<'a> {
        self.chain().on_failure(job)
    }

    /// Runs the members of `batch` once this job succeeded; see [`Chain::then_batch`].
    pub fn then_batch(self, batch: crate::Batch<'_>) -> Chain<'a> {
        self.chain().then_batch(batch)
    }

    fn chain(self) -> Chain<'a> {
        let keyed = self.id.is_some();
        Chain::new(self.jobs, self.row().map(|(_, row)| row), keyed)
    }

    fn row(&self) -> Result<(JobId, NewJob)> {
        let now = self.jobs.now();
        let mut row = new_job(&self.job, self.id, now, self.run_at.unwrap_or(now))?;
        row.unique = unique_claim(&self.job, &row, self.unique, self.replace);
        if let (Some(key), Some(concurrency)) = (&self.concurrency_key, &mut row.concurrency) {
            concurrency.key.clone_from(key);
        }
        Ok((row.id, row))
    }

    async fn send(self) -> Result<Enqueued> {
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
        let storage = &self.jobs.inner.storage;
        let enqueued = if row.unique.is_some() {
            let admitted = storage.jobs_admit(&[row]).instrument(span).await?;
            Enqueued::from_admitted(id, admitted[0])
        } else {
            storage.jobs_insert(&[row]).instrument(span).await?;
            Enqueued::Created(id)
        };
        self.jobs.notify_enqueued();
        Ok(enqueued)
    }
}

impl<'a, J: Job> IntoFuture for Enqueue<'a, J> {
    type Output = Result<JobId>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<JobId>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.send().await.map(Enqueued::id) })
    }
}
