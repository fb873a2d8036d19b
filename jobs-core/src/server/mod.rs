//! The worker server: claims jobs, runs them on tokio tasks, records how they ended,
//! heartbeats, rescues jobs of dead servers and prunes old rows.

mod attempt;
mod builder;
mod completer;
mod config;
mod heartbeat;
mod held;
mod maintenance;
mod metrics;
mod panics;
mod pauses;
mod prune;
mod supervisor;
mod ticker;
mod worker;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::Rate;
use crate::job::registry;
use crate::storage::{
    AnyStorage, ClaimedJob, Completion, Fence, LifecycleStore, LogLine, ProgressUpdate, ServerRow,
    ServerStore,
};
use crate::{Error, JobId, Jobs, Result, StateMap, registered_jobs};

use held::{Attempt, Deletions, Held, Stop, Unwritten, stop_reason};

pub use builder::JobServerBuilder;
pub use config::InvalidSetting;
pub use metrics::{
    DURATION_BUCKETS, Histogram, JobMetrics, ServerMetrics, describe_metrics, names as metric_names,
};

/// How a [`JobServer`] runs. Every field has a default; see each setter.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Jobs run at once.
    pub worker_count: usize,
    /// How often the server looks for work it was not woken for (and the longest
    /// time between two heartbeats).
    pub poll_interval: Duration,
    /// A server silent this long is dead: its jobs are rescued. It renews its leases
    /// at least every quarter of it, and stops its own jobs when it could not for half
    /// of it.
    pub server_timeout: Duration,
    /// The longest a storage call of the server may take before it is abandoned as
    /// failed (default 10 s); heartbeats are bounded by a quarter of `server_timeout`.
    pub storage_timeout: Duration,
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
    /// The most jobs of a queue `Processing` at once across every server, per queue: the
    /// claim counts them in the database and takes at most the rest (see
    /// [`JobServerBuilder::global_queue_limit`]). Every server running jobs of such a
    /// queue should be given the same limit: each holds the cluster to its own.
    pub global_queue_limits: BTreeMap<String, usize>,
    /// At most so many jobs of a queue start in any window of the period, across every
    /// server, per queue (see [`JobServerBuilder::queue_rate`]). Every server running
    /// jobs of such a queue should be given the same rate: each holds the cluster to
    /// its own.
    pub queue_rates: BTreeMap<String, Rate>,
    /// Claims jobs only of these queues (default `None`: every queue); jobs of other
    /// queues wait for a server that serves them.
    pub queues: Option<BTreeSet<String>>,
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
    /// Whether a job's panic records a backtrace with its failure (default true). It is
    /// captured even when `RUST_BACKTRACE` is unset.
    pub capture_backtraces: bool,
    /// Runs only jobs of these names (default `None`: every job this binary registers).
    /// A name this binary does not register is refused at start. Jobs of other names
    /// wait for a server that runs them.
    pub only_jobs: Option<BTreeSet<String>>,
    /// Declares only the `#[recurring]` jobs of these ids (default `None`: every one
    /// this binary has): one binary deployed as several applications, each owning its
    /// own schedules. An id this binary does not declare is refused at start. The
    /// application's other schedules stored before are disabled like any it no longer
    /// declares.
    pub only_recurring: Option<BTreeSet<String>>,
    /// A job that waits this long after it was due while no live server registers its
    /// name fails, saying so (default one day), so that nothing waits forever unseen.
    pub fail_unserved_after: Duration,
    /// The application this server belongs to (default: the name of its executable,
    /// which cargo takes from the binary's crate). The recurring jobs it declares are
    /// stored as this application's, and it disables only this application's
    /// declarations that it no longer has: services sharing a database never switch
    /// each other's schedules off.
    pub application: Option<String>,
    /// The release of the application this server runs (default: the newest version of
    /// the crates that declare its `#[recurring]` jobs, as cargo gives it). A server
    /// registers its application's recurring jobs only when no newer release of it did
    /// before, so an old node restarting during a rolling deploy leaves the new
    /// release's schedules as they are. Compared as versions (`1.10.0` after `1.9.2`).
    pub release: Option<String>,
}

impl JobServerBuilder {
    /// Registers the server, then starts claiming and running jobs.
    pub async fn start(mut self) -> Result<JobServer> {
        panics::catch_panic_locations();
        if !self.server_timeout_set {
            self.config.server_timeout = self.config.poll_interval * 4;
        }
        let config = self.config;
        config
            .check()
            .map_err(|invalid| Error::Config(invalid.to_string()))?;

        let names = registered_jobs();
        tracing::info!(count = names.len(), jobs = ?names, "registered jobs");
        let served: Vec<String> = match &config.only_jobs {
            Some(only) => only.iter().cloned().collect(),
            None => names.iter().map(|name| (*name).to_owned()).collect(),
        };
        if config.only_jobs.is_some() {
            tracing::info!(jobs = ?served, "runs only these jobs (only_jobs)");
        }

        let id = JobId::new().to_string();
        let host = heartbeat::hostname();
        let pid = std::process::id();
        let name = config
            .name
            .clone()
            .unwrap_or_else(|| format!("{host}:{pid}"));
        let (writes, write_rx) = mpsc::unbounded_channel();
        let limited_queues = config.limited_queues();
        if let Some(queues) = &config.queues {
            tracing::info!(?queues, "claims only from these queues (queues)");
        }
        // Claims read concurrency keys only when a job this server runs has them.
        let keyed = served.iter().any(|name| {
            registry()
                .get(name.as_str())
                .is_some_and(|descriptor| descriptor.is_keyed())
        });
        let deletions = Deletions {
            local: self.jobs.subscribe_deleted(),
            remote: self.jobs.storage().deletions(),
            checked: Mutex::new((0, 0)),
        };
        deletions.checked(deletions.signal());
        let paused_signal = self.jobs.subscribe_paused();
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
                shapes: served
                    .iter()
                    .filter_map(|name| {
                        let descriptor = registry().get(name.as_str())?;
                        Some((name.clone(), descriptor.shape_setting().to_owned()))
                    })
                    .collect(),
                jobs: served,
                queues: config.declared_queues(),
            },
            jobs: self.jobs,
            slots: Arc::new(Semaphore::new(config.worker_count)),
            config,
            state: self.state,
            running: AtomicU32::new(0),
            unrecorded: AtomicUsize::new(0),
            held: Mutex::new(Held::default()),
            claiming: tokio::sync::Mutex::new(()),
            lease: heartbeat::Lease::new(),
            shutdown_stopped: Mutex::new(Vec::new()),
            deletions,
            slot_freed: Notify::new(),
            ended: AtomicUsize::new(0),
            quick: AtomicUsize::new(0),
            stop_claiming: CancellationToken::new(),
            stop_jobs: CancellationToken::new(),
            stop_maintenance: CancellationToken::new(),
            stop_completer: CancellationToken::new(),
            stop_heartbeat: CancellationToken::new(),
            tracker: TaskTracker::new(),
            writes,
            queue_counts: Mutex::new(HashMap::new()),
            limited_queues,
            keyed,
            pauses: pauses::Pauses::new(paused_signal),
            metrics: ServerMetrics::default(),
        });
        // The first heartbeat registers the server, on the main storage: a database
        // that cannot be reached fails the start.
        let sent = std::time::Instant::now();
        shared
            .bounded(heartbeat::register(&shared, &shared.storage))
            .await?;
        shared.lease.renewed_at(sent);
        shared.metrics.publish_health();
        shared
            .bounded(crate::recurring::register_declared(
                &shared.jobs,
                &shared.config.declared_recurring(),
                &shared.config.application(),
                &shared.config.release(),
            ))
            .await?;

        let heartbeat = heartbeat::spawn(shared.clone())?;
        let completer_state = completer::State::new(write_rx);
        let completer = supervisor::spawn(&shared, "completer", &shared.stop_completer, {
            let shared = shared.clone();
            move || completer::run(shared.clone(), completer_state.clone())
        });
        let deleted_watcher =
            supervisor::spawn(&shared, "deleted-watcher", &shared.stop_maintenance, {
                let shared = shared.clone();
                move || worker::watch_deleted(shared.clone())
            });
        let claimer = supervisor::spawn(&shared, "claim", &shared.stop_claiming, {
            let shared = shared.clone();
            move || worker::claim_loop(shared.clone())
        });
        let maintainer = supervisor::spawn(&shared, "maintenance", &shared.stop_maintenance, {
            let shared = shared.clone();
            move || maintenance::run(shared.clone())
        });
        let ticker = supervisor::spawn(&shared, "ticker", &shared.stop_maintenance, {
            let shared = shared.clone();
            move || ticker::run(shared.clone())
        });
        tracing::info!(server = %shared.row.name, id = %shared.row.id, workers = shared.config.worker_count, "job server started");
        Ok(JobServer {
            shared,
            tasks: Some(Tasks {
                claimer,
                completer,
                maintainer,
                ticker,
                deleted_watcher,
                heartbeat,
            }),
        })
    }
}

/// A running worker server. Stop it with [`JobServer::shutdown`].
///
/// Keep it for as long as jobs should run: dropping it stops the server (with a
/// warning in the log), so `JobServer::builder(jobs).start().await?;` with the server
/// unbound warns at compile time.
///
/// ```no_run
/// # async fn demo() -> jobs_core::Result<()> {
/// let jobs = jobs_core::Jobs::connect("sqlite://jobs.db").await?;
/// let server = jobs_core::JobServer::builder(jobs).start().await?;
/// tokio::signal::ctrl_c().await.ok();
/// // Stops claiming, lets running jobs finish within the grace period and puts the
/// // rest back for another server.
/// server.shutdown().await;
/// # Ok(()) }
/// ```
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
    heartbeat: heartbeat::Thread,
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
    /// The queues this server knows as paused (read from the store at least once a poll
    /// interval while it claims); see [`Jobs::pause_queue`].
    pub fn paused_queues(&self) -> Vec<String> {
        self.shared.pauses.view().queues
    }

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

    /// How many attempts run on this server now: the tasks of their jobs still alive
    /// (one ending is counted until its task is gone). A job that sleeps or waits for
    /// an event ([`JobContext::sleep`](crate::JobContext::sleep)) holds none.
    pub fn running(&self) -> usize {
        self.shared.tracker.len()
    }

    /// Stops gracefully: claims nothing more, lets running jobs finish within the grace
    /// period, then stops the rest and puts them back (with the jobs it claimed ahead)
    /// so another server runs them at once, records every result, and removes the
    /// server's row. Jobs whose results could not be recorded are never put back: their
    /// leases run out and they run again elsewhere.
    pub async fn shutdown(mut self) {
        let Some(tasks) = self.tasks.take() else {
            return;
        };
        let shared = self.shared.clone();
        shared.stop_claiming.cancel();
        let _ = tasks.claimer.await;
        // Held until the jobs this shutdown puts back (stopped past the grace period,
        // claimed ahead) are put back: they leave the held set first, and the heartbeat,
        // still running, would otherwise put them back itself as lost.
        let claiming = shared.claiming.lock().await;
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
        // Put back only what did not succeed: attempts stopped past the grace period
        // and jobs claimed ahead. A result still waiting to be written stays
        // `Processing` here: its lease runs out and it runs again elsewhere.
        let mut unfinished: Vec<Fence> = shared
            .held()
            .ready
            .drain(..)
            .map(|job| job.fence())
            .collect();
        unfinished.extend(shared.shutdown_stopped().drain(..));
        if !unfinished.is_empty() {
            let now = shared.jobs.now();
            match shared
                .bounded(
                    shared
                        .storage
                        .jobs_release(&shared.row.id, Some(&unfinished), now),
                )
                .await
            {
                Ok(0) => {}
                Ok(released) => tracing::info!(released, "released unfinished jobs"),
                Err(error) => {
                    tracing::error!(%error, "could not release unfinished jobs; they will be rescued after the server timeout")
                }
            }
        }
        drop(claiming);
        tasks.heartbeat.stop(&shared).await;
        if let Err(error) = shared
            .bounded(shared.storage.server_remove(&shared.row.id))
            .await
        {
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
            self.shared.stop_heartbeat.cancel();
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
    /// Fired last (or when the server is dropped): the heartbeat thread stops.
    stop_heartbeat: CancellationToken,
    tracker: TaskTracker,
    /// Results, log lines and progress, written in batches by the completer.
    writes: mpsc::UnboundedSender<Write>,
    /// What this server holds: its leases are renewed, nothing else of its own.
    held: Mutex<Held>,
    /// Held by a claim from sending it until its jobs are in `held`, by the release of
    /// jobs claimed ahead (out of `held` already) until it is answered, and by shutdown
    /// from the claim loop's end until it put back what it stopped; the heartbeat
    /// releases the rows it owns but does not hold only when it can take this at once,
    /// so neither a claim that just committed nor jobs on their way back are taken for
    /// lost.
    claiming: tokio::sync::Mutex<()>,
    /// When leases were last renewed, and whether the server fenced itself.
    lease: heartbeat::Lease,
    /// Attempts stopped at shutdown past the grace period: put back for another server.
    shutdown_stopped: Mutex<Vec<Fence>>,
    /// Signals of deleted jobs, and those the deleted-watcher has checked.
    deletions: Deletions,
    /// Running attempts per queue.
    queue_counts: Mutex<HashMap<String, usize>>,
    /// The queues with a concurrency limit, on this server or across all, sorted.
    limited_queues: Vec<String>,
    /// Some job this server runs has a concurrency key (`#[job(concurrency_key = …)]`):
    /// its claims count the keys' running jobs.
    keyed: bool,
    /// The paused queues and job names, as last read.
    pauses: pauses::Pauses,
    metrics: ServerMetrics,
}

impl Shared {
    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        // Nothing panics while holding it: it only moves entries between maps.
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn shutdown_stopped(&self) -> std::sync::MutexGuard<'_, Vec<Fence>> {
        self.shutdown_stopped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `call`, failed when it takes longer than the storage timeout: an unreachable
    /// database never hangs a loop of the server.
    async fn bounded<T>(&self, call: impl Future<Output = Result<T>>) -> Result<T> {
        bounded(self.config.storage_timeout, call).await
    }

    /// How often the heartbeat renews leases: every poll interval, at most every
    /// quarter of the server timeout.
    fn heartbeat_interval(&self) -> Duration {
        self.config
            .poll_interval
            .min(self.config.server_timeout / 4)
    }

    fn queue_counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.queue_counts.lock().expect("queue counts lock")
    }

    fn has_ready(&self) -> bool {
        !self.held().ready.is_empty()
    }

    /// The next job claimed ahead, counted as running (see [`attempt::start`]) in the
    /// same step, unless the server is stopping (those stay claimed until shutdown puts
    /// them back) or fenced.
    fn take_ready(&self) -> Option<(ClaimedJob, attempt::Started)> {
        if self.stop_claiming.is_cancelled() || self.lease.fenced() {
            return None;
        }
        let mut held = self.held();
        let job = held.ready.pop_front()?;
        if held.ready.len() == self.prefetch_limit() / 2 {
            // Half of the jobs claimed ahead are left: time to claim more.
            self.slot_freed.notify_one();
        }
        let started = attempt::start(self, &mut held, &job);
        Some((job, started))
    }

    /// Most jobs claimed ahead of free slots: none with queue limits, which count
    /// running jobs only.
    fn prefetch_limit(&self) -> usize {
        if self.limited_queues.is_empty() {
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
    /// The attempt of a deleted job has ended.
    Stopped(Fence),
}

/// `call`, failed with a timeout error when it takes longer than `limit`.
async fn bounded<T>(limit: Duration, call: impl Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result,
        Err(_) => Err(Error::Database(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer from the database within {limit:?}"),
        )))),
    }
}
