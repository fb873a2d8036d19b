//! Enqueue-to-start latency on an idle server: one job every few milliseconds, each
//! reporting how long after the moment before its `enqueue` call it started. The server
//! runs in this process, or in a second process (this binary again, in the worker role)
//! that learns of new jobs through PostgreSQL `LISTEN/NOTIFY`.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use jobs::{JobServer, Jobs};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, timeout};

use crate::args::LATENCY_WORKER;
use crate::db::Scratch;
use crate::stats::{Spread, millis};
use crate::work::{Probe, Stamp, now_us};

/// How long the server is left alone before the first job, so it starts idle.
const SETTLE: Duration = Duration::from_millis(500);
/// How long the last job may take to report before the figure is abandoned.
const LAST_REPORT: Duration = Duration::from_secs(30);
/// What the worker process prints once its server runs.
const READY: &str = "ready";

/// What a latency figure found.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Latency {
    /// From the moment before `enqueue` was called to the job's first line (ms).
    pub(crate) start: Spread,
    /// How long the `enqueue` calls themselves took (ms): the part of `start` that is
    /// the insert's commit.
    pub(crate) enqueue: Spread,
}

/// One job every `every`, for `during`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// The gap between two enqueues.
    pub(crate) every: Duration,
    /// How long to keep enqueuing.
    pub(crate) during: Duration,
}

impl Pace {
    fn jobs(self) -> usize {
        (self.during.as_micros() / self.every.as_micros().max(1)) as usize
    }
}

/// With the server in this process.
pub(crate) async fn in_process(scratch: &Scratch, pace: Pace) -> Result<Latency> {
    let jobs = scratch.jobs().await?;
    let (probe, reports) = Probe::new();
    let server = JobServer::builder(jobs.clone())
        .state(probe)
        .start()
        .await?;
    let latency = measure(&jobs, reports, pace).await;
    server.shutdown().await;
    latency
}

/// With the server in a second process.
pub(crate) async fn cross_process(scratch: &Scratch, pace: Pace) -> Result<Latency> {
    let jobs = scratch.jobs().await?;
    let mut worker = tokio::process::Command::new(std::env::current_exe()?)
        .args([LATENCY_WORKER, scratch.url()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the worker process")?;
    let mut lines = BufReader::new(worker.stdout.take().context("worker stdout")?).lines();
    match timeout(Duration::from_secs(30), lines.next_line()).await {
        Ok(Ok(Some(line))) if line == READY => {}
        other => bail!("the worker process did not start: {other:?}"),
    }
    let (sender, reports) = mpsc::unbounded_channel();
    let forward = tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(latency) = line.parse::<i64>() {
                let _ = sender.send(latency);
            }
        }
    });
    let latency = measure(&jobs, reports, pace).await;
    // Closing its stdin tells the worker to shut down.
    drop(worker.stdin.take());
    let status = timeout(Duration::from_secs(30), worker.wait()).await??;
    forward.abort();
    ensure!(status.success(), "the worker process failed: {status}");
    latency
}

async fn measure(
    jobs: &Jobs,
    mut reports: mpsc::UnboundedReceiver<i64>,
    pace: Pace,
) -> Result<Latency> {
    tokio::time::sleep(SETTLE).await;
    let count = pace.jobs();
    let mut tick = tokio::time::interval(pace.every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut calls = Vec::with_capacity(count);
    for _ in 0..count {
        tick.tick().await;
        let called = Instant::now();
        jobs.enqueue(Stamp {
            sent_at_us: now_us(),
        })
        .await?;
        calls.push(millis(called.elapsed()));
    }
    let mut samples = Vec::with_capacity(count);
    let collect = async {
        while samples.len() < count {
            match reports.recv().await {
                Some(micros) => samples.push(micros as f64 / 1000.0),
                None => break,
            }
        }
    };
    let _ = timeout(LAST_REPORT, collect).await;
    ensure!(
        samples.len() == count,
        "{} of {count} jobs reported",
        samples.len()
    );
    Ok(Latency {
        start: Spread::of(&samples).context("no samples")?,
        enqueue: Spread::of(&calls).context("no samples")?,
    })
}

/// The worker process: runs a server on `url`, prints [`READY`], then one line per job
/// with its latency in µs, until its stdin closes.
pub(crate) async fn worker(url: &str) -> Result<()> {
    let jobs = Jobs::connect(url).await?;
    let (probe, mut reports) = Probe::new();
    let server = JobServer::builder(jobs).state(probe).start().await?;
    let mut out = tokio::io::stdout();
    out.write_all(format!("{READY}\n").as_bytes()).await?;
    out.flush().await?;
    let mut parent_gone = tokio::task::spawn_blocking(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    });
    loop {
        tokio::select! {
            Some(latency) = reports.recv() => {
                out.write_all(format!("{latency}\n").as_bytes()).await?;
                out.flush().await?;
            }
            _ = &mut parent_gone => break,
        }
    }
    server.shutdown().await;
    Ok(())
}
