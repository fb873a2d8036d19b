//! The heartbeat: renews the leases of exactly the jobs this server holds, on a thread
//! of its own with its own runtime and its own database connection, so that user code
//! blocking the worker runtime or a busy pool cannot delay it; and the self-fence: a
//! server that could not renew its leases for half the server timeout stops its jobs
//! before any other server may take them (see ARCHITECTURE.md, "Leases").

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, oneshot, watch};

use super::{Shared, Stop, bounded, supervisor};
use crate::storage::{AnyStorage, LifecycleStore, ServerRow, ServerStore};
use crate::{JobId, Result};

/// When the leases were last renewed, and whether the server fenced itself.
#[derive(Debug)]
pub(super) struct Lease {
    /// When the last successful renewal was sent (monotonic): the database wrote the
    /// leases after it, so they last at least a server timeout from then.
    renewed: std::sync::Mutex<Instant>,
    fenced: AtomicBool,
    /// Successful renewals so far: maintenance waits for a fresh one before rescuing.
    rounds: watch::Sender<u64>,
    /// Asks the heartbeat for a renewal now.
    wanted: Notify,
}

impl Lease {
    pub(super) fn new() -> Self {
        Self {
            renewed: std::sync::Mutex::new(Instant::now()),
            fenced: AtomicBool::new(false),
            rounds: watch::channel(0).0,
            wanted: Notify::new(),
        }
    }

    /// Whether the server stopped its jobs for want of renewed leases.
    pub(super) fn fenced(&self) -> bool {
        self.fenced.load(Ordering::Acquire)
    }

    pub(super) fn renewed_at(&self, sent: Instant) {
        let mut renewed = self
            .renewed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *renewed = (*renewed).max(sent);
    }

    fn last_renewed(&self) -> Instant {
        *self
            .renewed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks for a renewal and waits until one that began after this call succeeded;
    /// false when none did within `limit`.
    pub(super) async fn fresh(&self, limit: Duration) -> bool {
        let mut rounds = self.rounds.subscribe();
        // A round in progress may have read the held set before the caller's time: wait
        // for the one after it.
        let target = *rounds.borrow_and_update() + 2;
        self.wanted.notify_one();
        tokio::time::timeout(limit, async {
            loop {
                if *rounds.borrow_and_update() >= target {
                    return true;
                }
                self.wanted.notify_one();
                if rounds.changed().await.is_err() {
                    return false;
                }
            }
        })
        .await
        .unwrap_or(false)
    }
}

/// The heartbeat's thread; stopped by [`Thread::stop`] or by the stop token.
#[derive(Debug)]
pub(super) struct Thread {
    ended: oneshot::Receiver<()>,
}

impl Thread {
    /// Stops the heartbeat and waits (bounded) for its thread to end.
    pub(super) async fn stop(self, shared: &Shared) {
        shared.stop_heartbeat.cancel();
        let limit = bound(shared) + Duration::from_secs(1);
        if tokio::time::timeout(limit, self.ended).await.is_err() {
            tracing::warn!("the heartbeat thread did not stop in time");
        }
    }
}

/// Longest a heartbeat call may take: a quarter of the server timeout, at most the
/// storage timeout.
pub(super) fn bound(shared: &Shared) -> Duration {
    (shared.config.server_timeout / 4).min(shared.config.storage_timeout)
}

/// Starts the heartbeat thread: a current-thread runtime of its own, running the
/// heartbeat loop under the supervisor.
pub(super) fn spawn(shared: Arc<Shared>) -> Result<Thread> {
    let (done, ended) = oneshot::channel();
    std::thread::Builder::new()
        .name("jobs-heartbeat".to_owned())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match runtime {
                Ok(runtime) => runtime.block_on(async {
                    let stop = shared.stop_heartbeat.clone();
                    let metrics = shared.metrics.clone();
                    let interval = shared.heartbeat_interval();
                    tokio::spawn(supervisor::supervise(
                        "fence-watch",
                        metrics.clone(),
                        stop.clone(),
                        interval,
                        {
                            let shared = shared.clone();
                            move || watch_fence(shared.clone())
                        },
                    ));
                    supervisor::supervise("heartbeat", metrics, stop, interval, {
                        let shared = shared.clone();
                        move || run(shared.clone())
                    })
                    .await;
                }),
                Err(error) => {
                    tracing::error!(%error, "could not start the heartbeat's runtime");
                }
            }
            let _ = done.send(());
        })
        .map_err(|error| {
            crate::Error::Config(format!("could not start the heartbeat thread: {error}"))
        })?;
    Ok(Thread { ended })
}

/// The heartbeat loop: a connection of its own, then a renewal every heartbeat
/// interval (sooner when maintenance asks, or a manual clock moves).
async fn run(shared: Arc<Shared>) {
    let limit = bound(&shared);
    let mut failures = 0u32;
    let storage = loop {
        match bounded(limit, shared.storage.dedicated(limit)).await {
            Ok(storage) => break storage,
            Err(error) => {
                failures += 1;
                tracing::warn!(%error, "could not open the heartbeat's connection");
                tokio::select! {
                    () = shared.stop_heartbeat.cancelled() => return,
                    () = tokio::time::sleep(retry_delay(failures, &shared)) => {}
                }
            }
        }
    };
    let clock = shared.jobs.clock().clone();
    loop {
        let moved = clock.moved();
        let renewed = tokio::select! {
            () = shared.stop_heartbeat.cancelled() => return,
            renewed = renew(&shared, &storage) => renewed,
        };
        let wait = match renewed {
            Ok(()) => shared.heartbeat_interval(),
            Err(error) => {
                tracing::warn!(%error, "heartbeat failed: could not renew the leases");
                // Try again soon: the fence falls at half the server timeout.
                shared
                    .heartbeat_interval()
                    .min(shared.config.server_timeout / 8)
            }
        };
        tokio::select! {
            () = shared.stop_heartbeat.cancelled() => return,
            () = shared.lease.wanted.notified() => {}
            () = moved => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

fn retry_delay(failures: u32, shared: &Shared) -> Duration {
    (Duration::from_millis(100) * 2u32.saturating_pow(failures.min(16)))
        .min(shared.heartbeat_interval().max(Duration::from_millis(100)))
}

/// Registers the server and renews the leases of what it holds, on `storage`; stops
/// the attempts the database says are no longer this server's.
pub(super) async fn register(shared: &Shared, storage: &AnyStorage) -> Result<()> {
    let row = ServerRow {
        running: shared.running.load(Ordering::Relaxed),
        ..shared.row.clone()
    };
    let (held, waiting) = shared.held().fences();
    let clock = shared.jobs.clock();
    let lost = storage
        .server_heartbeat(
            &row,
            &held,
            &waiting,
            shared.config.server_timeout,
            clock.lease_offset(),
            clock.now(),
        )
        .await?;
    if !lost.is_empty() {
        // Results written since the held set was read are missing from the renewal too:
        // only the claims still held here are lost. A result the completer is writing
        // may be committed before the renewal and still be held here for a moment
        // after: such claims alone are no news.
        let mut held = shared.held();
        let lost = held.still_held(&lost);
        let results = lost
            .iter()
            .filter(|fence| held.unwritten_token(fence.id) == Some(fence.token))
            .count();
        let stopped = held.drop_lost(&lost);
        drop(held);
        if lost.len() > results {
            tracing::warn!(
                jobs = lost.len(),
                stopped,
                "jobs held here are no longer this server's (deleted, released or rescued \
                 elsewhere); stopping them"
            );
        } else if !lost.is_empty() {
            tracing::debug!(
                jobs = lost.len(),
                "results no longer held by this server (written as it renewed, or fenced)"
            );
        }
    }
    Ok(())
}

/// One round: renew, and on success record it (which lifts a fence) and put back what
/// is owned but not held.
async fn renew(shared: &Shared, storage: &AnyStorage) -> Result<()> {
    let limit = bound(shared);
    let sent = Instant::now();
    bounded(limit, register(shared, storage)).await?;
    shared.lease.renewed_at(sent);
    shared.metrics.set_leases_renewed(true);
    if shared.lease.fenced.swap(false, Ordering::AcqRel) {
        tracing::warn!("leases renewed again: the job server resumes");
        shared.slot_freed.notify_one();
    }
    shared.lease.rounds.send_modify(|rounds| *rounds += 1);
    release_unheld(shared, storage, limit).await;
    Ok(())
}

/// Puts back the rows this server owns but does not hold (a claim whose answer was
/// lost, an attempt dropped after a fence), unless a claim is in flight: its rows are
/// not registered as held yet.
async fn release_unheld(shared: &Shared, storage: &AnyStorage, limit: Duration) {
    let Ok(_claiming) = shared.claiming.try_lock() else {
        return;
    };
    let held: Vec<JobId> = shared.held().ids();
    let now = shared.jobs.now();
    match bounded(
        limit,
        storage.jobs_release_unheld(&shared.row.id, &held, now),
    )
    .await
    {
        Ok(0) => {}
        Ok(released) => {
            tracing::warn!(
                released,
                "put back jobs this server owned in the database but no longer held"
            );
            shared.jobs.notify_enqueued();
        }
        Err(error) => tracing::warn!(%error, "could not put back jobs this server no longer holds"),
    }
}

/// The self-fence: when no renewal succeeded for half the server timeout (measured
/// from when the last good one was sent, on the monotonic clock), stop starting jobs,
/// stop the running attempts and drop the jobs claimed ahead, so that every attempt of
/// this server is over before its lease can run out; a renewal that succeeds again
/// lifts it.
async fn watch_fence(shared: Arc<Shared>) {
    let half = shared.config.server_timeout / 2;
    loop {
        let deadline = shared.lease.last_renewed() + half;
        let now = Instant::now();
        if now < deadline || shared.lease.fenced() {
            let wait = if shared.lease.fenced() {
                shared.heartbeat_interval()
            } else {
                deadline - now
            };
            tokio::select! {
                () = shared.stop_heartbeat.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            continue;
        }
        fence(&shared, now - (deadline - half));
    }
}

fn fence(shared: &Shared, silent: Duration) {
    shared.lease.fenced.store(true, Ordering::Release);
    shared.metrics.fenced();
    let (stopped, dropped) = {
        let mut held = shared.held();
        for attempt in held.running.values() {
            attempt.stop(Stop::Fenced);
        }
        let dropped = held.ready.len();
        held.ready.clear();
        (held.running.len(), dropped)
    };
    tracing::error!(
        silent = ?silent,
        stopped,
        dropped,
        "no lease renewal for half the server timeout: stopping this server's jobs \
         before another server may rescue them; it resumes when the database answers"
    );
}

/// This machine's name, for the server's row.
pub(super) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
