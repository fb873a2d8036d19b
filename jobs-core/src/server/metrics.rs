//! What one server has run since it started: attempts per job name by outcome, how
//! long they took, how long jobs waited to start, and whether the server is healthy.
//!
//! Every figure goes two ways. It is recorded through the [`metrics`] facade, to
//! whatever recorder the process installed (the dashboard's Prometheus exporter, or the
//! app's own), under the names in [`names`]; and it is counted here in memory, for the
//! dashboard and for tests, which must not depend on a process-wide recorder.
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

/// The names of the figures a server records through the [`metrics`] facade. Labels are
/// bounded: `queue` and `name` (the job name), plus `outcome` on attempts; never ids.
pub mod names {
    /// Histogram, seconds, by `queue` and `name`: from when a job became due (enqueued,
    /// or its scheduled time) to the start of an attempt.
    pub const QUEUE_LATENCY: &str = "jobs_queue_latency_seconds";
    /// Histogram, seconds, by `queue` and `name`: how long attempts ran.
    pub const ATTEMPT_DURATION: &str = "jobs_attempt_duration_seconds";
    /// Counter, by `queue`, `name` and `outcome` (`succeeded`, `failed`: no retry
    /// left, `retried`: failed and will run again, `stopped`: stopped before its end,
    /// at shutdown, deletion or a lost lease).
    pub const ATTEMPTS: &str = "jobs_attempts_total";
    /// Gauge: 1 while the server renews its leases and none of its loops waits to
    /// restart, else 0.
    pub const SERVER_HEALTHY: &str = "jobs_server_healthy";
    /// Counter: loops of the server restarted after a panic or an early end.
    pub const LOOP_RESTARTS: &str = "jobs_server_loop_restarts_total";
    /// Counter: times the server fenced itself off (no lease renewal for half the
    /// server timeout: it stopped its jobs until the database answered again).
    pub const FENCES: &str = "jobs_server_fences_total";
}

/// Describes the figures of [`names`] (help text and unit) to the installed recorder.
/// An exporter that renders help text calls it once, after installing its recorder.
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        names::QUEUE_LATENCY,
        Unit::Seconds,
        "How long jobs waited between becoming due and an attempt starting, by queue and job name."
    );
    describe_histogram!(
        names::ATTEMPT_DURATION,
        Unit::Seconds,
        "How long attempts ran, by queue and job name."
    );
    describe_counter!(
        names::ATTEMPTS,
        "Attempts finished, by queue, job name and outcome (succeeded, failed, retried, stopped)."
    );
    describe_gauge!(
        names::SERVER_HEALTHY,
        "Whether this process's job server is healthy (1): it renews its leases and none of \
         its loops waits to restart."
    );
    describe_counter!(
        names::LOOP_RESTARTS,
        "Loops of this process's job server restarted after a panic or an early end."
    );
    describe_counter!(
        names::FENCES,
        "Times this process's job server fenced itself off: its heartbeat renewed no lease \
         for half the server timeout, so it stopped its jobs until the database answered."
    );
}

/// What became of an attempt: the `outcome` label of [`names::ATTEMPTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttemptOutcome {
    Succeeded,
    Failed,
    Retried,
    Stopped,
    /// The job went to sleep (`ctx.sleep`): not an attempt that ended.
    Slept,
    /// Its payload did not decode for this build, and it was put back, uncharged, for
    /// a server of another build.
    PutBack,
}

impl AttemptOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Retried => "retried",
            Self::Stopped => "stopped",
            Self::Slept => "slept",
            Self::PutBack => "put_back",
        }
    }
}

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
    /// Times the server fenced itself off.
    fences: AtomicU64,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            leases: AtomicBool::new(true),
            backing_off: AtomicUsize::new(0),
            restarts: AtomicU64::new(0),
            fences: AtomicU64::new(0),
        }
    }
}

impl fmt::Debug for ServerMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerMetrics")
            .field("job_names", &self.lock().len())
            .field("healthy", &self.healthy())
            .field("restarts", &self.restarts())
            .field("fences", &self.fences())
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

    /// How many times the server fenced itself off: its heartbeat renewed no lease for
    /// half the server timeout (the database did not answer in time), so it stopped
    /// its running jobs and dropped those claimed ahead until a renewal went through.
    /// Each is an outage of the server's work; a count that grows says the database,
    /// or the timeouts set, cannot keep up.
    pub fn fences(&self) -> u64 {
        self.health.fences.load(Ordering::Relaxed)
    }

    /// Counts a fence; [`Self::leases_renewed`] is false until [`Self::set_leases_renewed`].
    pub(crate) fn fenced(&self) {
        self.health.fences.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(names::FENCES).increment(1);
        self.set_leases_renewed(false);
    }

    pub(crate) fn set_leases_renewed(&self, renewed: bool) {
        self.health.leases.store(renewed, Ordering::Release);
        self.publish_health();
    }

    /// A loop failed and waits to restart: counted, unhealthy until [`Self::restarting`].
    pub(crate) fn backing_off(&self) {
        self.health.restarts.fetch_add(1, Ordering::Relaxed);
        self.health.backing_off.fetch_add(1, Ordering::AcqRel);
        metrics::counter!(names::LOOP_RESTARTS).increment(1);
        self.publish_health();
    }

    /// The loop that was [`Self::backing_off`] starts again.
    pub(crate) fn restarting(&self) {
        self.health.backing_off.fetch_sub(1, Ordering::AcqRel);
        self.publish_health();
    }

    /// Records the server's health through the facade (at start, and on each change).
    pub(crate) fn publish_health(&self) {
        metrics::gauge!(names::SERVER_HEALTHY).set(f64::from(u8::from(self.healthy())));
        // Registered at zero, so that the series exist before the first restart or fence.
        metrics::counter!(names::LOOP_RESTARTS).increment(0);
        metrics::counter!(names::FENCES).increment(0);
    }

    /// The counters of every job name this server has finished an attempt of, by name.
    pub fn snapshot(&self) -> Vec<JobMetrics> {
        self.lock().values().cloned().collect()
    }

    /// Counts one attempt of a job of `queue` that started `waited` after it became due.
    pub(crate) fn attempt_started(&self, name: &str, queue: &str, waited: Duration) {
        metrics::histogram!(
            names::QUEUE_LATENCY,
            "queue" => queue.to_owned(),
            "name" => name.to_owned(),
        )
        .record(waited.as_secs_f64());
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

    /// Counts one attempt of a job named `name` of `queue` that ended with `outcome`
    /// after running for `took`.
    pub(crate) fn attempt_finished(
        &self,
        name: &str,
        queue: &str,
        outcome: AttemptOutcome,
        took: Duration,
    ) {
        metrics::counter!(
            names::ATTEMPTS,
            "queue" => queue.to_owned(),
            "name" => name.to_owned(),
            "outcome" => outcome.as_str(),
        )
        .increment(1);
        if !matches!(
            outcome,
            AttemptOutcome::Stopped | AttemptOutcome::Slept | AttemptOutcome::PutBack
        ) {
            metrics::histogram!(
                names::ATTEMPT_DURATION,
                "queue" => queue.to_owned(),
                "name" => name.to_owned(),
            )
            .record(took.as_secs_f64());
        }
        self.entry(name, |metrics| {
            match outcome {
                AttemptOutcome::Succeeded => metrics.succeeded += 1,
                AttemptOutcome::Failed => metrics.failed += 1,
                AttemptOutcome::Retried => {
                    metrics.failed += 1;
                    metrics.retried += 1;
                }
                AttemptOutcome::Stopped => {
                    metrics.stopped += 1;
                    return;
                }
                AttemptOutcome::Slept | AttemptOutcome::PutBack => return,
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
    /// Of the failed attempts, those whose job will run again.
    pub retried: u64,
    /// Attempts stopped before their end (shutdown, deletion, a lost lease): not in
    /// [`Self::processed`].
    pub stopped: u64,
    /// How long attempts ran, from start to result (stopped ones left out).
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
            retried: 0,
            stopped: 0,
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
        let q = "default";
        metrics.attempt_finished("b", q, AttemptOutcome::Succeeded, Duration::from_millis(3));
        metrics.attempt_finished("a", q, AttemptOutcome::Retried, Duration::from_millis(40));
        metrics.attempt_finished("a", q, AttemptOutcome::Succeeded, Duration::from_secs(7200));
        metrics.attempt_finished("a", q, AttemptOutcome::Stopped, Duration::from_secs(1));
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.len(), 2);
        let a = &snapshot[0];
        assert_eq!((a.name.as_str(), a.succeeded, a.failed), ("a", 1, 1));
        assert_eq!(a.processed(), 2);
        assert_eq!((a.retried, a.stopped), (1, 1));
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
