//! The worker server: claims jobs, runs them on tokio tasks, records how they ended,
//! heartbeats, rescues jobs of dead servers and prunes old rows.

mod completer;
mod maintenance;
mod metrics;
mod ticker;
mod worker;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::storage::{
    AnyStorage, ClaimedJob, Completion, Fence, LifecycleStore, LogLine, ProgressUpdate, ServerRow,
    ServerStore,
};
use crate::{Error, JobId, Jobs, Result, StateMap, registered_jobs};

pub use metrics::{DURATION_BUCKETS, Histogram, JobMetrics, ServerMetrics};

/// How a [`JobServer`] runs. Every field has a default; see each setter.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Jobs run at once.
    pub worker_count: usize,
    /// How often the server looks for work it was not woken for, and heartbeats.
    pub poll_interval: Duration,
    /// A server silent this long is dead: its jobs are rescued.
    pub server_timeout: Duration,
    /// Retries for jobs that do not set their own.
    pub default_retries: u32,
    /// Seed of the retry jitter.
    pub backoff_seed: u64,
    /// How long running jobs may take to finish at shutdown.
    pub shutdown_grace: Duration,
    /// Succeeded jobs are deleted this long after they finished.
    pub delete_succeeded_after: Duration,
    /// Deleted jobs are removed for good this long after they were deleted.
    pub delete_deleted_after: Duration,
    /// A name for this server on the dashboard (default: host and process id).
    pub name: Option<String>,
    /// The most jobs of a queue this server runs at once, per queue; queues not named
    /// here share the rest of `worker_count`.
    pub queue_limits: BTreeMap<String, usize>,
    /// Most jobs claimed ahead of free workers (default: 8 × `worker_count`; 0 never
    /// claims ahead). While jobs are short (nine in ten of those that ended since the
    /// last claim took under a sixteenth of a second, or of a poll interval if shorter),
    /// a claim tops up this many jobs beyond the free workers, and the next claim goes
    /// out when workers have taken half of them, so that short jobs come in large
    /// batches and workers do not wait for a claim; a worker whose job ends takes the
    /// next of them at once. Jobs that run longer, or a mix, never lead to a claim
    /// ahead, and jobs claimed ahead that find no free worker within a second (or a
    /// poll interval, if shorter) go back for any server. Off with queue limits.
    pub prefetch: Option<usize>,
}

impl ServerConfig {
    /// The prefetch limit in force: the one set, or 8 × `worker_count`.
    pub fn prefetch_limit(&self) -> usize {
        self.prefetch
            .unwrap_or_else(|| self.worker_count.saturating_mul(8))
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let poll_interval = Duration::from_secs(5);
        Self {
            worker_count: cores * 8,
            poll_interval,
            server_timeout: poll_interval * 4,
            default_retries: crate::DEFAULT_RETRIES,
            backoff_seed: 0,
            shutdown_grace: Duration::from_secs(10),
            delete_succeeded_after: Duration::from_secs(36 * 3600),
            delete_deleted_after: Duration::from_secs(72 * 3600),
            name: None,
            queue_limits: BTreeMap::new(),
            prefetch: None,
        }
    }
}

/// Builds and starts a [`JobServer`].
#[must_use = "a builder does nothing until `.start()` is awaited"]
pub struct JobServerBuilder {
    jobs: Jobs,
    state: StateMap,
    config: ServerConfig,
    server_timeout_set: bool,
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

    /// How often to look for work without being woken (default 5 s); also the
    /// heartbeat interval.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.config.poll_interval = interval;
        self
    }

    /// How long a server may go without heartbeating before its jobs are rescued
    /// (default: 4 × poll interval).
    pub fn server_timeout(mut self, timeout: Duration) -> Self {
        self.config.server_timeout = timeout;
        self.server_timeout_set = true;
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

    /// Most jobs claimed ahead of free workers while jobs are short (default:
    /// 8 × `worker_count`; 0 turns it off). See [`ServerConfig::prefetch`].
    pub fn prefetch(mut self, jobs: usize) -> Self {
        self.config.prefetch = Some(jobs);
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

    /// Registers the server, then starts claiming and running jobs.
    pub async fn start(mut self) -> Result<JobServer> {
        if !self.server_timeout_set {
            self.config.server_timeout = self.config.poll_interval * 4;
        }
        let config = self.config;
        if config.worker_count == 0 {
            return Err(Error::Config("worker_count must be at least 1".into()));
        }
        if config.poll_interval.is_zero() {
            return Err(Error::Config("poll_interval must be above zero".into()));
        }
        if config.server_timeout <= config.poll_interval {
            return Err(Error::Config(
                "server_timeout must be longer than poll_interval, or live servers \
                 would be taken for dead"
                    .into(),
            ));
        }

        let names = registered_jobs();
        tracing::info!(count = names.len(), jobs = ?names, "registered jobs");

        let id = JobId::new().to_string();
        let host = hostname();
        let pid = std::process::id();
        let name = config
            .name
            .clone()
            .unwrap_or_else(|| format!("{host}:{pid}"));
        let (writes, write_rx) = mpsc::unbounded_channel();
        let limited_queues = config.queue_limits.keys().cloned().collect();
        let shared = Arc::new(Shared {
            storage: self.jobs.storage().clone(),
            row: ServerRow {
                id,
                name,
                host,
                pid,
                workers: u32::try_from(config.worker_count).unwrap_or(u32::MAX),
                running: 0,
                started_at: self.jobs.now(),
            },
            jobs: self.jobs,
            slots: Arc::new(Semaphore::new(config.worker_count)),
            config,
            state: self.state,
            running: AtomicU32::new(0),
            unrecorded: AtomicUsize::new(0),
            slot_freed: Notify::new(),
            ended: AtomicUsize::new(0),
            quick: AtomicUsize::new(0),
            stop_claiming: CancellationToken::new(),
            stop_jobs: CancellationToken::new(),
            stop_maintenance: CancellationToken::new(),
            stop_completer: CancellationToken::new(),
            tracker: TaskTracker::new(),
            writes,
            running_jobs: Mutex::new(HashMap::new()),
            unwritten: Mutex::new(HashMap::new()),
            claiming: tokio::sync::Mutex::new(()),
            queue_counts: Mutex::new(HashMap::new()),
            ready: Mutex::new(VecDeque::new()),
            limited_queues,
            metrics: ServerMetrics::default(),
        });
        maintenance::heartbeat(&shared).await?;
        crate::recurring::register_declared(&shared.jobs).await?;

        let completer = tokio::spawn(completer::run(shared.clone(), write_rx));
        let deleted_watcher = tokio::spawn(worker::watch_deleted(shared.clone()));
        let claimer = tokio::spawn(worker::claim_loop(shared.clone()));
        let maintainer = tokio::spawn(maintenance::run(shared.clone()));
        let ticker = tokio::spawn(ticker::run(shared.clone()));
        tracing::info!(server = %shared.row.name, id = %shared.row.id, workers = shared.config.worker_count, "job server started");
        Ok(JobServer {
            shared,
            tasks: Some(Tasks {
                claimer,
                completer,
                maintainer,
                ticker,
                deleted_watcher,
            }),
        })
    }
}

/// A running worker server. Stop it with [`JobServer::shutdown`].
///
/// Keep it for as long as jobs should run: dropping it stops the server (with a
/// warning in the log), so `JobServer::builder(jobs).start().await?;` with the server
/// unbound warns at compile time.
#[must_use = "a JobServer stops when dropped: keep it, and call `shutdown().await` to stop it"]
pub struct JobServer {
    shared: Arc<Shared>,
    tasks: Option<Tasks>,
}

struct Tasks {
    claimer: JoinHandle<()>,
    completer: JoinHandle<()>,
    maintainer: JoinHandle<()>,
    ticker: JoinHandle<()>,
    deleted_watcher: JoinHandle<()>,
}

impl fmt::Debug for JobServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobServer")
            .field("id", &self.shared.row.id)
            .field("name", &self.shared.row.name)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl JobServer {
    /// Starts building a server that runs the jobs of `jobs`.
    pub fn builder(jobs: Jobs) -> JobServerBuilder {
        JobServerBuilder {
            jobs,
            state: StateMap::default(),
            config: ServerConfig::default(),
            server_timeout_set: false,
        }
    }

    /// This server's id, as stored as the owner of the jobs it runs.
    pub fn id(&self) -> &str {
        &self.shared.row.id
    }

    /// The settings it runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.shared.config
    }

    /// What it has run since it started, counted in memory (for `/metrics`).
    pub fn metrics(&self) -> ServerMetrics {
        self.shared.metrics.clone()
    }

    /// Stops gracefully: claims nothing more, lets running jobs finish within the grace
    /// period, then stops the rest and puts them back so another server runs them at
    /// once, records every result, and removes the server's row.
    pub async fn shutdown(mut self) {
        let Some(tasks) = self.tasks.take() else {
            return;
        };
        let shared = self.shared.clone();
        shared.stop_claiming.cancel();
        let _ = tasks.claimer.await;
        shared.tracker.close();
        if tokio::time::timeout(shared.config.shutdown_grace, shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                running = shared.tracker.len(),
                "jobs still running after the shutdown grace period; stopping them"
            );
            shared.stop_jobs.cancel();
            shared.tracker.wait().await;
        }
        shared.stop_maintenance.cancel();
        let _ = tasks.maintainer.await;
        let _ = tasks.ticker.await;
        let _ = tasks.deleted_watcher.await;
        // Every job task has ended, so every result is in the channel: record them all.
        shared.stop_completer.cancel();
        if tokio::time::timeout(
            shared.config.shutdown_grace.max(Duration::from_secs(5)),
            tasks.completer,
        )
        .await
        .is_err()
        {
            tracing::error!(
                "could not record the last results before shutdown; those jobs will be rescued after the server timeout"
            );
        }
        let now = shared.jobs.now();
        match shared.storage.jobs_release(&shared.row.id, None, now).await {
            Ok(0) => {}
            Ok(released) => tracing::info!(released, "released unfinished jobs"),
            Err(error) => {
                tracing::error!(%error, "could not release unfinished jobs; they will be rescued after the server timeout")
            }
        }
        if let Err(error) = shared.storage.server_remove(&shared.row.id).await {
            tracing::warn!(%error, "could not remove the server's row");
        }
        tracing::info!(server = %shared.row.name, "job server stopped");
    }
}

impl Drop for JobServer {
    fn drop(&mut self) {
        if self.tasks.is_some() {
            // Dropped without `shutdown()`: stop claiming and stop the running jobs,
            // which stay claimed until the server timeout rescues them.
            tracing::warn!(
                server = %self.shared.row.name,
                "job server dropped while running, without shutdown(): it stops now; \
                 keep the JobServer for as long as jobs should run"
            );
            self.shared.stop_claiming.cancel();
            self.shared.stop_jobs.cancel();
            self.shared.stop_maintenance.cancel();
        }
    }
}

/// What the server's tasks share.
struct Shared {
    jobs: Jobs,
    storage: AnyStorage,
    config: ServerConfig,
    state: StateMap,
    row: ServerRow,
    slots: Arc<Semaphore>,
    running: AtomicU32,
    /// Results sent to the completer and not yet written.
    unrecorded: AtomicUsize,
    /// Signalled when a job ends (or the completer catches up), so a full server claims
    /// again at once.
    slot_freed: Notify,
    /// Jobs that ended since the last claim, and those of them that were short (see
    /// `worker::short_jobs`).
    ended: AtomicUsize,
    quick: AtomicUsize,
    stop_claiming: CancellationToken,
    /// Fired when the grace period is over: running jobs are dropped.
    stop_jobs: CancellationToken,
    stop_maintenance: CancellationToken,
    /// Fired once every job task has ended: the completer drains its channel and stops.
    stop_completer: CancellationToken,
    tracker: TaskTracker,
    /// Results, log lines and progress, written in batches by the completer.
    writes: mpsc::UnboundedSender<Write>,
    /// The attempts running now, by job: the claim's token, and the cancellation token
    /// that stops the attempt.
    running_jobs: Mutex<HashMap<JobId, (i64, CancellationToken)>>,
    /// Attempts that ended and whose result is not written yet, with their claim's
    /// token: still held, so their leases are renewed.
    unwritten: Mutex<HashMap<JobId, i64>>,
    /// Held by a claim from its request until its jobs are registered as held; the
    /// heartbeat puts back the rows it owns but does not hold only when it gets it.
    claiming: tokio::sync::Mutex<()>,
    /// Jobs claimed ahead of free slots, in claim order: a worker whose job ends takes
    /// the next one here before it frees its slot.
    ready: Mutex<VecDeque<ClaimedJob>>,
    /// Running attempts per queue.
    queue_counts: Mutex<HashMap<String, usize>>,
    /// The queues with a concurrency limit.
    limited_queues: Vec<String>,
    metrics: ServerMetrics,
}

impl Shared {
    fn running_jobs(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, (i64, CancellationToken)>> {
        self.running_jobs.lock().expect("running jobs lock")
    }

    fn unwritten(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, i64>> {
        self.unwritten.lock().expect("unwritten results lock")
    }

    /// The claims this server holds: running attempts, jobs claimed ahead, results not
    /// written yet; and the ids of those claimed ahead (not started).
    ///
    /// Read under the lock of the jobs claimed ahead, which a job leaves only once it is
    /// registered as running; an attempt that ends is registered as an unwritten result
    /// before it leaves the running ones.
    fn held(&self) -> (Vec<Fence>, Vec<JobId>) {
        let ready = self.ready();
        let mut held: HashMap<JobId, i64> = ready.iter().map(|job| (job.id, job.token)).collect();
        let waiting: Vec<JobId> = ready.iter().map(|job| job.id).collect();
        held.extend(
            self.running_jobs()
                .iter()
                .map(|(id, (token, _))| (*id, *token)),
        );
        held.extend(self.unwritten().iter().map(|(id, token)| (*id, *token)));
        drop(ready);
        let held = held
            .into_iter()
            .map(|(id, token)| Fence { id, token })
            .collect();
        (held, waiting)
    }

    fn queue_counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.queue_counts.lock().expect("queue counts lock")
    }

    fn ready(&self) -> std::sync::MutexGuard<'_, VecDeque<ClaimedJob>> {
        self.ready.lock().expect("ready jobs lock")
    }

    fn has_ready(&self) -> bool {
        !self.ready().is_empty()
    }

    /// The next job claimed ahead, unless the server is stopping: those stay claimed
    /// until shutdown puts them back. `start` registers it as running before the queue
    /// lets go of it, so that [`Shared::held`] never misses it in between.
    fn take_ready<T>(&self, start: impl FnOnce(&ClaimedJob) -> T) -> Option<(ClaimedJob, T)> {
        if self.stop_claiming.is_cancelled() {
            return None;
        }
        let mut ready = self.ready();
        let job = ready.pop_front()?;
        let started = start(&job);
        if ready.len() == self.prefetch_limit() / 2 {
            // Half of the jobs claimed ahead are left: time to claim more.
            self.slot_freed.notify_one();
        }
        Some((job, started))
    }

    /// Most jobs claimed ahead of free slots: none with queue limits, which count
    /// running jobs only.
    fn prefetch_limit(&self) -> usize {
        if self.config.queue_limits.is_empty() {
            self.config.prefetch_limit()
        } else {
            0
        }
    }

    fn queue_running(&self, queue: &str) -> usize {
        self.queue_counts().get(queue).copied().unwrap_or(0)
    }
}

/// What running jobs send the completer to write.
#[derive(Debug)]
pub(crate) enum Write {
    Completion(Completion),
    Log(LogLine),
    Progress(ProgressUpdate),
    /// An attempt stopped before its end (deleted, or at shutdown).
    Stopped(Fence),
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
