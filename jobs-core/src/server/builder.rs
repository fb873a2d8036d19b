//! The builder of a [`JobServer`](super::JobServer): each setting with its method;
//! `start` is with the server.

use std::fmt;
use std::time::Duration;

use super::ServerConfig;
use crate::{Jobs, Rate, StateMap};

/// Builds and starts a [`JobServer`](super::JobServer).
///
/// ```no_run
/// # use std::time::Duration;
/// # use jobs_core::{JobServer, Jobs};
/// # #[derive(Clone)] struct Model;
/// # async fn demo(jobs: Jobs) -> jobs_core::Result<()> {
/// let server = JobServer::builder(jobs)
///     .worker_count(64) // jobs that wait on a model mostly wait: many are cheap
///     .queue_limit("pdf", 2) // at most two of the `pdf` queue at once here
///     .state(Model) // for jobs that take a `State<Model>`
///     .shutdown_grace(Duration::from_secs(30))
///     .start()
///     .await?;
/// # server.shutdown().await;
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until `.start()` is awaited"]
pub struct JobServerBuilder {
    pub(super) jobs: Jobs,
    pub(super) state: StateMap,
    pub(super) config: ServerConfig,
    /// Whether a server timeout was given, as a setting or through `config`.
    pub(super) server_timeout_set: bool,
}

impl fmt::Debug for JobServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobServerBuilder")
            .field("config", &self.config)
            .field("state", &self.state)
            .finish()
    }
}

impl JobServerBuilder {
    /// The client this server will run jobs from.
    pub(crate) fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    /// Makes `value` available to every job that takes a `State<T>` parameter of its
    /// type. Call once per type.
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// Jobs run at once (default: 8 per CPU core). Waiting jobs are tokio tasks, so
    /// thousands cost little.
    pub fn worker_count(mut self, count: usize) -> Self {
        self.config.worker_count = count;
        self
    }

    /// How often to look for work without being woken (default 5 s); also the longest
    /// time between two heartbeats (which run at least every quarter of the server
    /// timeout).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.config.poll_interval = interval;
        self
    }

    /// How long a server may go without heartbeating before its jobs are rescued
    /// (default: 4 × poll interval). A server that cannot renew its leases for half of
    /// it stops its jobs, so that none runs twice at once.
    pub fn server_timeout(mut self, timeout: Duration) -> Self {
        self.config.server_timeout = timeout;
        self.server_timeout_set = true;
        self
    }

    /// The longest a storage call of the server may take before it is abandoned as
    /// failed and tried again (default 10 s), so an unreachable database never hangs
    /// claiming or recording results.
    pub fn storage_timeout(mut self, timeout: Duration) -> Self {
        self.config.storage_timeout = timeout;
        self
    }

    /// Retries for jobs that do not set `#[job(retries = …)]` (default 10).
    pub fn default_retries(mut self, retries: u32) -> Self {
        self.config.default_retries = retries;
        self
    }

    /// Seed of the retry jitter (default 0).
    pub fn backoff_seed(mut self, seed: u64) -> Self {
        self.config.backoff_seed = seed;
        self
    }

    /// How long running jobs may take to finish at shutdown (default 10 s); the rest
    /// are stopped and put back for another server.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.config.shutdown_grace = grace;
        self
    }

    /// How long succeeded jobs are kept (default 36 h).
    pub fn delete_succeeded_after(mut self, after: Duration) -> Self {
        self.config.delete_succeeded_after = after;
        self
    }

    /// How long deleted jobs are kept (default 72 h).
    pub fn delete_deleted_after(mut self, after: Duration) -> Self {
        self.config.delete_deleted_after = after;
        self
    }

    /// Runs at most `limit` jobs of `queue` at once, so 500 slow LLM jobs never take
    /// every worker from a fast email queue.
    pub fn queue_limit(mut self, queue: impl Into<String>, limit: usize) -> Self {
        self.config.queue_limits.insert(queue.into(), limit);
        self
    }

    /// Runs at most `limit` jobs of `queue` at once across every server on the
    /// database, so five PDF renders never become fifteen with three replicas. The
    /// claim counts the queue's running jobs in the database and takes at most the
    /// rest; claims of the queue from all servers take turns (on PostgreSQL an advisory
    /// lock per queue, on SQLite the database's write lock). Give every server that
    /// runs the queue the same limit: each holds the cluster to its own. With
    /// [`queue_limit`](Self::queue_limit) too, both hold.
    pub fn global_queue_limit(mut self, queue: impl Into<String>, limit: usize) -> Self {
        self.config.global_queue_limits.insert(queue.into(), limit);
        self
    }

    /// Starts at most `rate.count` jobs of `queue` in any window of `rate.period`,
    /// across every server on the database: `queue_rate("llm", "50/1m".parse()?)` or
    /// `queue_rate("llm", Rate::per(50, Duration::from_secs(60)))`. The claim counts the
    /// queue's starts recorded in the database within the window and takes at most the
    /// rest; a job over the rate stays `Enqueued`, holds no worker and is charged no
    /// attempt, and the server claims again when the window frees. A start is counted
    /// for the period plus a tenth of it (at most 100 ms), the time a claimed job may
    /// take to begin, so that the jobs' own starts keep to the rate too. Jobs of a rated
    /// queue are never claimed ahead of a free worker. Give every server that runs the
    /// queue the same rate: each holds the cluster to its own. With queue limits too,
    /// all hold.
    pub fn queue_rate(mut self, queue: impl Into<String>, rate: Rate) -> Self {
        self.config.queue_rates.insert(queue.into(), rate);
        self
    }

    /// Claims jobs only of these queues (default: every queue), so GPU-bound work lands
    /// on the servers that have the GPU. Jobs of other queues wait for a server that
    /// serves them; queue limits and pauses apply within these.
    pub fn queues<Q: Into<String>>(mut self, queues: impl IntoIterator<Item = Q>) -> Self {
        self.config.queues = Some(queues.into_iter().map(Into::into).collect());
        self
    }

    /// Most jobs claimed ahead of free workers while jobs are short (default:
    /// 8 × `worker_count`; 0 turns it off). See [`ServerConfig::prefetch`].
    pub fn prefetch(mut self, jobs: usize) -> Self {
        self.config.prefetch = Some(jobs);
        self
    }

    /// Whether a panic inside a job records a backtrace with the attempt (default true),
    /// shown folded on the job's page. It is captured even when `RUST_BACKTRACE` is
    /// unset; turn it off if jobs panic often and the capture costs too much (see the
    /// `panics` figure of jobs-bench). The backtrace an `anyhow::Error` carries is kept
    /// either way.
    pub fn capture_backtraces(mut self, capture: bool) -> Self {
        self.config.capture_backtraces = capture;
        self
    }

    /// Runs only jobs of these names, of those this binary registers (default: all of
    /// them): a process for one kind of work, or one binary standing in for several
    /// builds. Jobs of other names wait for a server that runs them.
    pub fn only_jobs<N: Into<String>>(mut self, names: impl IntoIterator<Item = N>) -> Self {
        self.config.only_jobs = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Declares only the `#[recurring]` jobs of these ids, of those this binary has
    /// (default: all of them): one binary deployed as several applications, each
    /// owning its schedules. See [`ServerConfig::only_recurring`].
    pub fn only_recurring<I: Into<String>>(mut self, ids: impl IntoIterator<Item = I>) -> Self {
        self.config.only_recurring = Some(ids.into_iter().map(Into::into).collect());
        self
    }

    /// How long a due job may wait while no live server registers its name before it
    /// fails saying so (default one day).
    pub fn fail_unserved_after(mut self, after: Duration) -> Self {
        self.config.fail_unserved_after = after;
        self
    }

    /// The application this server belongs to (default: its executable's name): it
    /// owns the recurring jobs this binary declares, and disables only its own that it
    /// no longer declares. See [`ServerConfig::application`].
    pub fn application(mut self, application: impl Into<String>) -> Self {
        self.config.application = Some(application.into());
        self
    }

    /// The release of the application (default: the newest version of the crates that
    /// declare its `#[recurring]` jobs): an older release never changes the schedules a
    /// newer one registered. See [`ServerConfig::release`].
    pub fn release(mut self, release: impl Into<String>) -> Self {
        self.config.release = Some(release.into());
        self
    }

    /// The name shown on the dashboard.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.config.name = Some(name.into());
        self
    }

    /// Replaces every setting at once.
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self.server_timeout_set = true;
        self
    }
}
