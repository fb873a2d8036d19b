//! The jobs the figures run, and the state they report to.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use jobs::prelude::*;
use jobs::{JobServer, JobServerBuilder, Jobs};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::db::Raw;

/// Longest a server may take to run a figure's jobs before the figure is abandoned.
const LIMIT: Duration = Duration::from_secs(600);

/// How long the stand-in for a model call waits.
pub(crate) const MODEL_CALL: Duration = Duration::from_secs(1);

/// Counts finished runs, so a figure knows when every job it enqueued has run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally(Arc<AtomicUsize>);

impl Tally {
    /// Counts one finished run.
    pub(crate) fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// How many runs have finished so far.
    pub(crate) fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Resolves once `n` runs have finished; fails after `limit`.
    async fn reached(&self, n: usize, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        while self.0.load(Ordering::Relaxed) < n {
            if Instant::now() > deadline {
                bail!(
                    "only {} of {n} jobs ran within {limit:?}",
                    self.0.load(Ordering::Relaxed)
                );
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    }
}

/// Starts a server with `workers` workers on `jobs`, whose enqueued jobs all report to a
/// [`Tally`], and waits until `n` have run and `probe` sees every result recorded →
/// the server, still running, and the time that took.
pub(crate) async fn serve_until_done(
    jobs: Jobs,
    workers: usize,
    n: usize,
    probe: &mut Raw,
) -> Result<(JobServer, Duration)> {
    serve_until_done_with(jobs, workers, n, probe, |builder| builder).await
}

/// [`serve_until_done`] with more settings of the server.
pub(crate) async fn serve_until_done_with(
    jobs: Jobs,
    workers: usize,
    n: usize,
    probe: &mut Raw,
    settings: impl FnOnce(JobServerBuilder) -> JobServerBuilder,
) -> Result<(JobServer, Duration)> {
    let tally = Tally::default();
    let started = Instant::now();
    let builder = JobServer::builder(jobs)
        .state(tally.clone())
        .worker_count(workers);
    let server = settings(builder).start().await?;
    tally.reached(n, LIMIT).await?;
    probe.settled(LIMIT).await?;
    Ok((server, started.elapsed()))
}

/// Does nothing but count itself: a drain of these measures the library, not the job.
#[job]
pub(crate) async fn noop(State(tally): State<Tally>, n: u32) {
    let _ = n;
    tally.add();
}

/// Counts itself, then panics: the panics figure.
#[job(retries = 0)]
pub(crate) async fn panicky(State(tally): State<Tally>, n: u32) {
    let _ = n;
    tally.add();
    std::panic::panic_any(crate::panics::MESSAGE);
}

/// Waits as a job waiting for a language model's reply does.
#[job]
pub(crate) async fn await_model(State(tally): State<Tally>, n: u32) {
    let _ = n;
    tokio::time::sleep(MODEL_CALL).await;
    tally.add();
}

/// Reports how long after `sent_at_us` (wall clock, µs) it started.
#[job]
pub(crate) async fn stamp(State(probe): State<Probe>, sent_at_us: i64) {
    probe.record(sent_at_us);
}

/// Where [`stamp`] jobs report their enqueue-to-start latency (µs).
#[derive(Debug, Clone)]
pub(crate) struct Probe(mpsc::UnboundedSender<i64>);

impl Probe {
    /// A probe and the receiving end of its reports.
    pub(crate) fn new() -> (Self, mpsc::UnboundedReceiver<i64>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Self(sender), receiver)
    }

    fn record(&self, sent_at_us: i64) {
        let _ = self.0.send(now_us() - sent_at_us);
    }
}

/// The wall clock in µs since the Unix epoch: the one clock two processes share.
pub(crate) fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
        })
}
