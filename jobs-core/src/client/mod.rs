//! The client: enqueue jobs, read them back, delete them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::job::info::{JobInfo, JobQuery, JobSummary, Page, ServerInfo, ThroughputPoint};
use crate::storage::{AdminStore, AnyStorage, Requeue, Schema, WaitingBy};
use crate::{Clock, Error, JobId, JobState, Result, SystemClock};

pub(crate) mod batch;
pub(crate) mod chain;
mod enqueue;
mod events;
mod options;
mod pause;
mod queues;
pub(crate) mod transactional;

pub(crate) use enqueue::new_job;
pub use enqueue::{Enqueue, Enqueued};
pub use events::EVENT_RETENTION;
pub use options::{ConnectOptions, SqliteSynchronous};

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
    /// Shared by the clients of [`Jobs::with_pool_of_its_own`], which reach the same
    /// servers in this process.
    signals: Arc<Signals>,
}

/// The in-process signals of a client to the servers it runs.
struct Signals {
    /// Bumped on every enqueue, so servers in this process claim at once instead of
    /// waiting for their next poll.
    enqueued: watch::Sender<u64>,
    /// Bumped when a recurring schedule is stored, so tickers re-read their next tick.
    recurring: watch::Sender<u64>,
    /// Bumped when jobs are deleted, so servers in this process stop their attempts.
    deleted: watch::Sender<u64>,
    /// Bumped when a queue or job name is paused or resumed, so servers in this process
    /// read the pauses again at once.
    paused: watch::Sender<u64>,
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

    /// The job with `id`, with its whole history.
    pub async fn get(&self, id: JobId) -> Result<JobInfo> {
        self.inner
            .storage
            .job_get(id)
            .await?
            .ok_or(Error::JobNotFound(id))
    }

    /// What job `id` returned, typed as the job `J` it is: `None` until it succeeded,
    /// `Some(())` for a job that returns nothing.
    ///
    /// ```no_run
    /// # use jobs_core::{Job, JobId, Jobs};
    /// # async fn demo<Summarize: Job>(jobs: Jobs, id: JobId) -> jobs_core::Result<()> {
    /// if let Some(summary) = jobs.result::<Summarize>(id).await? {
    ///     // the value the job fn returned, as it returned it
    /// #   let _ = summary;
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// Fails with [`Error::JobNotFound`], with [`Error::WrongJob`] when the job is of
    /// another type than `J`, and with [`Error::UndecodableResult`] when the stored
    /// result no longer reads as `J::Output` (the type changed since it ran).
    pub async fn result<J: crate::Job>(&self, id: JobId) -> Result<Option<J::Output>> {
        let info = self.get(id).await?;
        let expected = J::DESCRIPTOR.name();
        if info.name != expected {
            return Err(Error::WrongJob {
                id,
                expected,
                actual: info.name,
            });
        }
        if info.state != crate::JobState::Succeeded {
            return Ok(None);
        }
        let value = info.result.unwrap_or(serde_json::Value::Null);
        serde_json::from_value(value)
            .map(Some)
            .map_err(|error| Error::UndecodableResult {
                id,
                reason: error.to_string(),
            })
    }

    /// Marks a job `Deleted`, with the continuations awaiting it: it will not run
    /// (again). A running attempt is stopped (at once in this process, within a poll
    /// interval elsewhere). Returns false when there is no such job.
    pub async fn delete(&self, id: JobId) -> Result<bool> {
        let deleted = self.inner.storage.job_delete(id, self.now()).await?;
        self.inner.signals.deleted.send_modify(|n| *n += 1);
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
    ///
    /// A job deleted while it ran is requeued only once its attempt has stopped (or its
    /// server's lease on it ran out); until then this is [`Error::StillRunning`], since
    /// the job would otherwise run twice at once.
    pub async fn requeue(&self, id: JobId) -> Result<bool> {
        let offset = self.inner.clock.lease_offset();
        match self
            .inner
            .storage
            .job_requeue(id, self.now(), offset)
            .await?
        {
            Requeue::Requeued => {
                self.notify_enqueued();
                Ok(true)
            }
            Requeue::NotFound | Requeue::NotRequeueable(_) => Ok(false),
            Requeue::StillRunning { server } => Err(Error::StillRunning { id, server }),
        }
    }

    /// Requeues every job matching the query's filters (state, name, search; paging is
    /// ignored), but those deleted while running whose attempt has not stopped yet;
    /// returns how many.
    pub async fn requeue_matching(&self, query: &JobQuery) -> Result<u64> {
        let offset = self.inner.clock.lease_offset();
        let requeued = self
            .inner
            .storage
            .jobs_requeue_matching(query, self.now(), offset)
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
        self.inner.signals.deleted.send_modify(|n| *n += 1);
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

    /// Per queue, how many jobs are due and wait for a server, and since when the
    /// longest-waiting of them is due (queues with none waiting are left out).
    pub async fn waiting_by_queue(&self) -> Result<Vec<crate::QueueWaiting>> {
        let waiting = self
            .inner
            .storage
            .jobs_waiting(self.now(), WaitingBy::Queue)
            .await?;
        Ok(waiting
            .into_iter()
            .map(|waiting| crate::QueueWaiting {
                queue: waiting.key,
                waiting: waiting.waiting,
                oldest_due: waiting.oldest_due,
            })
            .collect())
    }

    /// The job names with jobs due that no server registered in the database runs
    /// (each server stores the names it runs), by name: what waits for a build that is
    /// not deployed. Empty while no server is registered, or while one of a release
    /// that does not store its names is (it counts as running every name), as
    /// [`JobInfo::waiting_for_server`](crate::JobInfo::waiting_for_server) says of one
    /// job.
    pub async fn unserved(&self) -> Result<Vec<crate::Unserved>> {
        let servers = self.inner.storage.servers_list().await?;
        let mut served = std::collections::BTreeSet::new();
        for server in &servers {
            match &server.jobs {
                Some(names) => served.extend(names.iter().map(String::as_str)),
                None => return Ok(Vec::new()),
            }
        }
        if servers.is_empty() {
            return Ok(Vec::new());
        }
        let waiting = self
            .inner
            .storage
            .jobs_waiting(self.now(), WaitingBy::Name)
            .await?;
        Ok(waiting
            .into_iter()
            .filter(|waiting| !served.contains(waiting.key.as_str()))
            .map(|waiting| crate::Unserved {
                name: waiting.key,
                waiting: waiting.waiting,
                oldest_due: waiting.oldest_due,
            })
            .collect())
    }

    /// A client of the same database, clock and servers whose reads go through a pool
    /// of their own of `max_connections` (opened as needed), so that a reader that may
    /// be slow or many (a dashboard over millions of jobs) never takes the connections
    /// this client's servers claim, renew and record results through.
    ///
    /// On SQLite writes keep going through the one writer; on PostgreSQL they use the new
    /// pool too, whose connections `pg_stat_activity` names `name` (its
    /// `application_name`). A client on the application's SQLite pool or an in-memory
    /// database keeps its pool. Enqueues, deletes and pauses through it reach this
    /// process's servers at once, as through `self`.
    ///
    /// ```no_run
    /// # async fn run(jobs: jobs_core::Jobs) {
    /// // What the dashboard of the axum plugin reads through (`dashboard.pool_size`).
    /// let dashboard = jobs.with_pool_of_its_own(2, "jobs-dashboard");
    /// let counts = dashboard.count_by_state().await;
    /// # }
    /// ```
    pub fn with_pool_of_its_own(&self, max_connections: u32, name: &str) -> Jobs {
        Jobs {
            inner: Arc::new(Inner {
                storage: self.inner.storage.reads_apart(max_connections.max(1), name),
                clock: self.inner.clock.clone(),
                signals: self.inner.signals.clone(),
            }),
        }
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
        self.inner.signals.enqueued.subscribe()
    }

    pub(crate) fn notify_enqueued(&self) {
        self.inner.signals.enqueued.send_modify(|n| *n += 1);
    }

    pub(crate) fn subscribe_paused(&self) -> watch::Receiver<u64> {
        self.inner.signals.paused.subscribe()
    }

    pub(crate) fn notify_paused(&self) {
        self.inner.signals.paused.send_modify(|n| *n += 1);
    }

    pub(crate) fn subscribe_deleted(&self) -> watch::Receiver<u64> {
        self.inner.signals.deleted.subscribe()
    }

    pub(crate) fn subscribe_recurring(&self) -> watch::Receiver<u64> {
        self.inner.signals.recurring.subscribe()
    }

    pub(crate) fn notify_recurring(&self) {
        self.inner.signals.recurring.send_modify(|n| *n += 1);
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
    options: ConnectOptions,
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
            .field("options", &self.options)
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
            ) -> std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<(), sqlx::Error>> + Send + 'c>,
            > + Send
            + Sync
            + 'static,
    {
        self.sqlite_writer_after_connect = Some(Arc::new(callback));
        self
    }

    /// How a client built from a [`url`](Self::url) connects: pool size, acquire
    /// timeout, SQLite's synchronous level and readers, PostgreSQL's durable commits.
    /// Ignored with an application's own pool, but for the durable commits.
    pub fn connect_options(mut self, options: ConnectOptions) -> Self {
        self.options = options;
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
                self.options.check()?;
                connect_url(
                    &url,
                    &self.options,
                    #[cfg(feature = "sqlite")]
                    self.sqlite_writer_after_connect,
                )
                .await?
            }
            #[cfg(feature = "sqlite")]
            Some(Source::Sqlite(_)) if self.options.postgres_schema.is_some() => {
                return Err(Error::Config(SCHEMA_ON_SQLITE.into()));
            }
            #[cfg(feature = "sqlite")]
            Some(Source::Sqlite(pool)) => {
                AnyStorage::Sqlite(crate::storage::sqlite::SqliteStorage::from_pool(pool))
            }
            #[cfg(feature = "postgres")]
            Some(Source::Postgres(_)) if self.options.postgres_schema.is_some() => {
                return Err(Error::Config(
                    "postgres_schema applies to a client built from a URL: on the \
                     application's own pool, set `search_path` in the pool's connect options"
                        .into(),
                ));
            }
            #[cfg(feature = "postgres")]
            Some(Source::Postgres(pool)) => AnyStorage::Postgres(
                crate::storage::postgres::PgStorage::from_pool(pool)
                    .durable(self.options.postgres_durable_commits),
            ),
        };
        storage.migrate().await?;
        Ok(Jobs {
            inner: Arc::new(Inner {
                storage,
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                signals: Arc::new(Signals {
                    enqueued: watch::channel(0).0,
                    recurring: watch::channel(0).0,
                    deleted: watch::channel(0).0,
                    paused: watch::channel(0).0,
                }),
            }),
        })
    }
}

async fn connect_url(
    url: &str,
    options: &ConnectOptions,
    #[cfg(feature = "sqlite")] sqlite_writer_after_connect: Option<
        crate::storage::sqlite::AfterConnect,
    >,
) -> Result<AnyStorage> {
    let unsupported = |reason: &str| Error::UnsupportedUrl {
        url: redact(url),
        reason: reason.to_owned(),
    };
    if url.starts_with("sqlite:") {
        if options.postgres_schema.is_some() {
            return Err(Error::Config(SCHEMA_ON_SQLITE.into()));
        }
        #[cfg(feature = "sqlite")]
        return Ok(AnyStorage::Sqlite(
            crate::storage::sqlite::SqliteStorage::connect(
                url,
                options,
                sqlite_writer_after_connect,
            )
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
            crate::storage::postgres::PgStorage::connect(url, options).await?,
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

/// Why a client on SQLite refuses `postgres_schema`.
const SCHEMA_ON_SQLITE: &str = "postgres_schema is for PostgreSQL: on SQLite, give each \
     application a database file of its own";

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
