//! The client: enqueue jobs, read them back, delete them.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::watch;

use crate::chain::Chain;
use crate::record::{JobInfo, JobQuery, JobSummary, Page, ServerInfo, ThroughputPoint};
use crate::storage::{AdminStore, AnyStorage, LifecycleStore, NewJob, Schema};
use crate::transactional::EnqueueConnection;
use crate::{Clock, Error, Job, JobId, JobState, Result, SystemClock};

/// The handle to a job store: enqueue, inspect and delete jobs. Cheap to clone; every
/// clone shares one connection pool.
///
/// ```no_run
/// # async fn demo() -> jobs_core::Result<()> {
/// let jobs = jobs_core::Jobs::connect("sqlite://jobs.db").await?; // runs migrations
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

struct Inner {
    storage: AnyStorage,
    clock: Arc<dyn Clock>,
    /// Bumped on every enqueue, so servers in this process claim at once instead of
    /// waiting for their next poll.
    enqueued: watch::Sender<u64>,
    /// Bumped when a recurring schedule is stored, so schedulers re-read their next tick.
    recurring: watch::Sender<u64>,
    /// Bumped when jobs are deleted, so servers in this process stop their attempts.
    deleted: watch::Sender<u64>,
}

impl fmt::Debug for Jobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jobs")
            .field("storage", &self.inner.storage)
            .field("clock", &self.inner.clock)
            .finish()
    }
}

impl Jobs {
    /// Connects to the database at `url` and brings its schema up to date.
    ///
    /// `sqlite://path/to/file.db` (created when missing) or, with the `postgres`
    /// feature, `postgres://user@host/db`.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder().url(url).connect().await
    }

    /// Options beyond the URL: an existing pool, an injected clock.
    pub fn builder() -> JobsBuilder {
        JobsBuilder::default()
    }

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

    /// The job with `id`, with its whole history.
    pub async fn get(&self, id: JobId) -> Result<JobInfo> {
        self.inner
            .storage
            .job_get(id)
            .await?
            .ok_or(Error::JobNotFound(id))
    }

    /// Marks a job `Deleted`, with the continuations awaiting it: it will not run
    /// (again). A running attempt is stopped (at once in this process, within a poll
    /// interval elsewhere). Returns false when there is no such job.
    pub async fn delete(&self, id: JobId) -> Result<bool> {
        let deleted = self.inner.storage.job_delete(id, self.now()).await?;
        self.inner.deleted.send_modify(|n| *n += 1);
        Ok(deleted)
    }

    /// A page of jobs, newest first.
    pub async fn list(&self, query: JobQuery) -> Result<Page<JobSummary>> {
        let limit = query.limit.clamp(1, 1000);
        let items = self
            .inner
            .storage
            .jobs_list(&JobQuery { limit, ..query })
            .await?;
        let next = (items.len() == limit as usize)
            .then(|| items.last().map(|job| job.id))
            .flatten();
        Ok(Page { items, next })
    }

    /// Runs a job again now: a failed, succeeded, deleted or scheduled job goes back to
    /// `Enqueued` with its attempts counted from zero (its history keeps the old ones).
    /// False when there is no such job, or it is running or awaiting its parent.
    pub async fn requeue(&self, id: JobId) -> Result<bool> {
        let requeued = self.inner.storage.job_requeue(id, self.now()).await?;
        if requeued {
            self.notify_enqueued();
        }
        Ok(requeued)
    }

    /// Requeues every job matching the query's filters (state, name, search; paging is
    /// ignored); returns how many.
    pub async fn requeue_matching(&self, query: &JobQuery) -> Result<u64> {
        let requeued = self
            .inner
            .storage
            .jobs_requeue_matching(query, self.now())
            .await?;
        if requeued > 0 {
            self.notify_enqueued();
        }
        Ok(requeued)
    }

    /// Deletes every job matching the query's filters; returns how many.
    pub async fn delete_matching(&self, query: &JobQuery) -> Result<u64> {
        let deleted = self
            .inner
            .storage
            .jobs_delete_matching(query, self.now())
            .await?;
        self.inner.deleted.send_modify(|n| *n += 1);
        Ok(deleted)
    }

    /// Finished attempts per minute over the last `window`, oldest first.
    pub async fn throughput(&self, window: Duration) -> Result<Vec<ThroughputPoint>> {
        let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        let since = self
            .now()
            .checked_sub_signed(window)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        self.inner.storage.jobs_throughput(since).await
    }

    /// The servers registered in the database, as they last heartbeated.
    pub async fn servers(&self) -> Result<Vec<ServerInfo>> {
        self.inner.storage.servers_list().await
    }

    /// How many jobs are in each state (states without jobs are left out).
    pub async fn count_by_state(&self) -> Result<Vec<(JobState, u64)>> {
        self.inner.storage.jobs_count().await
    }

    /// The clock this client and its servers read.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    pub(crate) fn storage(&self) -> &AnyStorage {
        &self.inner.storage
    }

    pub(crate) fn subscribe_enqueued(&self) -> watch::Receiver<u64> {
        self.inner.enqueued.subscribe()
    }

    pub(crate) fn notify_enqueued(&self) {
        self.inner.enqueued.send_modify(|n| *n += 1);
    }

    pub(crate) fn subscribe_deleted(&self) -> watch::Receiver<u64> {
        self.inner.deleted.subscribe()
    }

    pub(crate) fn subscribe_recurring(&self) -> watch::Receiver<u64> {
        self.inner.recurring.subscribe()
    }

    pub(crate) fn notify_recurring(&self) {
        self.inner.recurring.send_modify(|n| *n += 1);
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
        crate::transactional::jobs_insert(&self.jobs.inner.storage, conn, &[row]).await?;
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
        let (id, row) = self.row()?;
        self.jobs.inner.storage.jobs_insert(&[row]).await?;
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

enum Source {
    Url(String),
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

/// Builds a [`Jobs`] client: where the jobs live and which clock to read.
#[derive(Default)]
pub struct JobsBuilder {
    source: Option<Source>,
    clock: Option<Arc<dyn Clock>>,
    #[cfg(feature = "sqlite")]
    sqlite_writer_after_connect: Option<crate::storage::sqlite::AfterConnect>,
}

impl fmt::Debug for JobsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            None => "none",
            Some(Source::Url(_)) => "url",
            #[cfg(feature = "sqlite")]
            Some(Source::Sqlite(_)) => "sqlite pool",
            #[cfg(feature = "postgres")]
            Some(Source::Postgres(_)) => "postgres pool",
        };
        f.debug_struct("JobsBuilder")
            .field("source", &source)
            .field("clock", &self.clock)
            .finish()
    }
}

impl JobsBuilder {
    /// The database URL (`sqlite://…` or `postgres://…`).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.source = Some(Source::Url(url.into()));
        self
    }

    /// Keeps jobs in the application's own SQLite pool.
    #[cfg(feature = "sqlite")]
    pub fn sqlite_pool(mut self, pool: sqlx::SqlitePool) -> Self {
        self.source = Some(Source::Sqlite(pool));
        self
    }

    /// Keeps jobs in the application's own PostgreSQL pool.
    #[cfg(feature = "postgres")]
    pub fn postgres_pool(mut self, pool: sqlx::PgPool) -> Self {
        self.source = Some(Source::Postgres(pool));
        self
    }

    /// Runs `callback` on the SQLite connection that a URL-configured client writes
    /// through, each time it is opened (the benchmark installs a commit counter with it).
    #[doc(hidden)]
    #[cfg(feature = "sqlite")]
    pub fn sqlite_writer_after_connect<F>(mut self, callback: F) -> Self
    where
        F: for<'c> Fn(
                &'c mut sqlx::SqliteConnection,
            )
                -> Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + 'c>>
            + Send
            + Sync
            + 'static,
    {
        self.sqlite_writer_after_connect = Some(Arc::new(callback));
        self
    }

    /// Reads time from `clock` instead of the system clock (for tests).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Connects and runs migrations.
    pub async fn connect(self) -> Result<Jobs> {
        let storage = match self.source {
            None => {
                return Err(Error::Config(
                    "no database: set a URL or a pool on the Jobs builder".into(),
                ));
            }
            Some(Source::Url(url)) => {
                connect_url(
                    &url,
                    #[cfg(feature = "sqlite")]
                    self.sqlite_writer_after_connect,
                )
                .await?
            }
            #[cfg(feature = "sqlite")]
            Some(Source::Sqlite(pool)) => {
                AnyStorage::Sqlite(crate::storage::sqlite::SqliteStorage::from_pool(pool))
            }
            #[cfg(feature = "postgres")]
            Some(Source::Postgres(pool)) => {
                AnyStorage::Postgres(crate::storage::postgres::PgStorage::from_pool(pool))
            }
        };
        storage.migrate().await?;
        Ok(Jobs {
            inner: Arc::new(Inner {
                storage,
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                enqueued: watch::channel(0).0,
                recurring: watch::channel(0).0,
                deleted: watch::channel(0).0,
            }),
        })
    }
}

async fn connect_url(
    url: &str,
    #[cfg(feature = "sqlite")] sqlite_writer_after_connect: Option<
        crate::storage::sqlite::AfterConnect,
    >,
) -> Result<AnyStorage> {
    let unsupported = |reason: &str| Error::UnsupportedUrl {
        url: redact(url),
        reason: reason.to_owned(),
    };
    if url.starts_with("sqlite:") {
        #[cfg(feature = "sqlite")]
        return Ok(AnyStorage::Sqlite(
            crate::storage::sqlite::SqliteStorage::connect(url, sqlite_writer_after_connect)
                .await?,
        ));
        #[cfg(not(feature = "sqlite"))]
        return Err(unsupported(
            "this build lacks the `sqlite` feature of `jobs`",
        ));
    }
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        #[cfg(feature = "postgres")]
        return Ok(AnyStorage::Postgres(
            crate::storage::postgres::PgStorage::connect(url).await?,
        ));
        #[cfg(not(feature = "postgres"))]
        return Err(unsupported(
            "this build lacks the `postgres` feature of `jobs`",
        ));
    }
    Err(unsupported(
        "expected a URL starting with `sqlite:` or `postgres:`",
    ))
}

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgres://app:secret@db:5432/jobs"),
            "postgres://app:***@db:5432/jobs"
        );
        assert_eq!(redact("postgres://app@db/jobs"), "postgres://app@db/jobs");
        assert_eq!(redact("sqlite://jobs.db"), "sqlite://jobs.db");
    }
}
