//! What one server has run since it started, counted in memory for `/metrics`: attempts
//! per job name by outcome, how long they took, and how long jobs waited to start.
//!
//! One mutex over a map keyed by job name: an attempt takes it once, for a few
//! additions, next to the database write that records the attempt, so it never
//! contends in practice. Atomics would still need a lock around the map for names
//! seen for the first time.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The upper bounds of the duration buckets, in seconds: from a quick database write to
/// an agent's hour-long run.
pub const DURATION_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// The live counters of a [`JobServer`](crate::JobServer), from
/// [`JobServer::metrics`](crate::JobServer::metrics). Cheap to clone; clones share the
/// counters.
#[derive(Clone, Default)]
pub struct ServerMetrics {
    by_name: Arc<Mutex<BTreeMap<String, JobMetrics>>>,
    health: Arc<Health>,
}

/// Whether the server can do its work: its leases renew, and none of its loops waits
/// to be restarted.
#[derive(Debug)]
struct Health {
    /// The last heartbeat renewed the leases (within half the server timeout).
    leases: AtomicBool,
    /// Loops waiting out their back-off before a restart.
    backing_off: AtomicUsize,
    /// Restarts of loops that panicked or ended early.
    restarts: AtomicU64,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            leases: AtomicBool::new(true),
            backing_off: AtomicUsize::new(0),
            restarts: AtomicU64::new(0),
        }
    }
}

impl fmt::Debug for ServerMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerMetrics")
            .field("job_names", &self.lock().len())
            .field("healthy", &self.healthy())
            .field("restarts", &self.restarts())
            .finish()
    }
}

impl ServerMetrics {
    /// Whether the server is healthy: its heartbeat renews its leases (it has not
    /// fenced itself off for want of the database) and none of its loops is waiting
    /// to be restarted after a failure.
    pub fn healthy(&self) -> bool {
        self.leases_renewed() && self.health.backing_off.load(Ordering::Acquire) == 0
    }

    /// Whether the heartbeat renews the server's leases. False while the database
    /// cannot be reached for half the server timeout: the server then runs no jobs.
    pub fn leases_renewed(&self) -> bool {
        self.health.leases.load(Ordering::Acquire)
    }

    /// How many times a loop of the server (claim, completer, maintenance, heartbeat,
    /// ticker, deleted-watcher) panicked or ended early and was restarted.
    pub fn restarts(&self) -> u64 {
        self.health.restarts.load(Ordering::Relaxed)
    }

    pub(crate) fn set_leases_renewed(&self, renewed: bool) {
        self.health.leases.store(renewed, Ordering::Release);
    }

    /// A loop failed and waits to restart: counted, unhealthy until [`Self::restarting`].
    pub(crate) fn backing_off(&self) {
        self.health.restarts.fetch_add(1, Ordering::Relaxed);
        self.health.backing_off.fetch_add(1, Ordering::AcqRel);
    }

    /// The loop that was [`Self::backing_off`] starts again.
    pub(crate) fn restarting(&self) {
        self.health.backing_off.fetch_sub(1, Ordering::AcqRel);
    }

    /// The counters of every job name this server has finished an attempt of, by name.
    pub fn snapshot(&self) -> Vec<JobMetrics> {
        self.lock().values().cloned().collect()
    }

    /// Counts one attempt that started `waited` after its job became due.
    pub(crate) fn attempt_started(&self, name: &str, waited: Duration) {
        self.entry(name, |metrics| metrics.queue_latency.observe(waited));
    }

    fn entry(&self, name: &str, update: impl FnOnce(&mut JobMetrics)) {
        let mut by_name = self.lock();
        let metrics = match by_name.get_mut(name) {
            Some(metrics) => metrics,
            None => by_name
                .entry(name.to_owned())
                .or_insert_with(|| JobMetrics::new(name)),
        };
        update(metrics);
    }

    /// Counts one finished attempt of a job named `name` that ran for `took`.
    pub(crate) fn attempt_finished(&self, name: &str, succeeded: bool, took: Duration) {
        self.entry(name, |metrics| {
            if succeeded {
                metrics.succeeded += 1;
            } else {
                metrics.failed += 1;
            }
            metrics.attempt_duration.observe(took);
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, JobMetrics>> {
        // Counters stay meaningful after a panic elsewhere: nothing is left half-updated.
        self.by_name.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a server counted for one job name.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobMetrics {
    /// The registered job name.
    pub name: String,
    /// Attempts that succeeded.
    pub succeeded: u64,
    /// Attempts that failed, whether retried or not (panics included).
    pub failed: u64,
    /// How long attempts ran, from start to result.
    pub attempt_duration: Histogram,
    /// How long jobs waited between becoming due and starting.
    pub queue_latency: Histogram,
}

impl JobMetrics {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            succeeded: 0,
            failed: 0,
            attempt_duration: Histogram::default(),
            queue_latency: Histogram::default(),
        }
    }

    /// Attempts finished, whatever their outcome.
    pub fn processed(&self) -> u64 {
        self.succeeded + self.failed
    }
}

/// Durations counted into the fixed [`DURATION_BUCKETS`].
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Histogram {
    /// How many observations fell at or below each bound of [`DURATION_BUCKETS`] and
    /// above the one before (not cumulative); longer ones are only in `count`.
    pub buckets: [u64; DURATION_BUCKETS.len()],
    /// Every observation.
    pub count: u64,
    /// Their sum, in seconds.
    pub sum_seconds: f64,
}

impl Histogram {
    fn observe(&mut self, value: Duration) {
        let seconds = value.as_secs_f64();
        if let Some(bucket) = DURATION_BUCKETS.iter().position(|&bound| seconds <= bound) {
            self.buckets[bucket] += 1;
        }
        self.count += 1;
        self.sum_seconds += seconds;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_attempts_by_name_and_outcome() {
        let metrics = ServerMetrics::default();
        metrics.attempt_finished("b", true, Duration::from_millis(3));
        metrics.attempt_finished("a", false, Duration::from_millis(40));
        metrics.attempt_finished("a", true, Duration::from_secs(7200));
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.len(), 2);
        let a = &snapshot[0];
        assert_eq!((a.name.as_str(), a.succeeded, a.failed), ("a", 1, 1));
        assert_eq!(a.processed(), 2);
        assert_eq!(a.attempt_duration.count, 2);
        assert_eq!(
            a.attempt_duration.buckets[3], 1,
            "40 ms is in the 50 ms bucket"
        );
        assert_eq!(
            a.attempt_duration.buckets.iter().sum::<u64>(),
            1,
            "two hours is past the last bound"
        );
        assert!((a.attempt_duration.sum_seconds - 7200.04).abs() < 1e-9);
        assert_eq!(snapshot[1].attempt_duration.buckets[0], 1);
    }
}
