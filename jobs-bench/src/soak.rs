//! `jobs-bench soak`: N minutes of mixed jobs on PostgreSQL with random faults, then a
//! count of what must never happen.
//!
//! Worker nodes are processes of this binary (the hidden `__soak-node` role), each
//! reaching the database through a [`FaultProxy`] of its own; the enqueuer and the
//! final checks reach it directly. Jobs are short, long, failing (their first two
//! attempts), panicking (their first attempt), timing out (their first attempt),
//! recurring, and short ones with `retries = 0`; every kind is built to end `Succeeded`
//! within its retries. Faults, drawn
//! from a seeded generator: one node partitioned (its proxy blackholes) for up to four
//! times the server timeout, every node partitioned at once, one node's connections
//! reset, one node killed with SIGKILL and started again. Every execution is recorded
//! in an [`ExecutionLog`] on the host's monotonic clock.
//!
//! After the last fault, the nodes get two minutes to drain. The report: executions;
//! overlaps (two executions of one job at the same time); lost (a job enqueued that is
//! gone, or `Succeeded` without ever having run); stuck (not finished after the drain);
//! falsely failed (`Failed`, which no job here should end as). The command exits with
//! an error unless the last four are zero.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use jobs::prelude::*;
use jobs::{JobServer, Jobs};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::db::{Backend, Scratch, redacted};
use crate::fault::{self, ExecutionLog, FaultProxy, Mode, monotonic_ns};

/// The hidden first argument of a soak worker node.
pub(crate) const SOAK_NODE: &str = "__soak-node";

/// Workers per node.
const WORKERS: usize = 16;
/// The nodes' poll interval (also their heartbeat interval).
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// The nodes' server timeout: a node silent this long is dead.
const SERVER_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the nodes get to finish everything after the last fault.
const DRAIN: Duration = Duration::from_secs(120);
/// A batch of jobs is enqueued this often.
const ENQUEUE_EVERY: Duration = Duration::from_millis(200);
/// Jobs per batch.
const BATCH: usize = 10;

/// A soak run as asked for.
#[derive(Debug, Clone)]
pub(crate) struct Soak {
    /// How long faults are injected.
    pub(crate) duration: Duration,
    /// Seed of the job mix and the fault schedule.
    pub(crate) seed: u64,
    /// How many worker nodes.
    pub(crate) nodes: usize,
    /// Where the scratch database is created.
    pub(crate) pg_url: String,
    /// Where the nodes' logs go.
    pub(crate) out: PathBuf,
}

impl Soak {
    /// The command line that reproduces this run's job mix and fault schedule (the
    /// timing of a run on another machine differs).
    pub(crate) fn command(&self) -> String {
        let profile = if cfg!(debug_assertions) {
            ""
        } else {
            " --release"
        };
        let minutes = self.duration.as_secs_f64() / 60.0;
        format!(
            "cargo run{profile} -p jobs-bench -- soak --minutes {minutes} --seed {} --nodes {} \
             --pg-url {}",
            self.seed,
            self.nodes,
            redacted(&self.pg_url)
        )
    }
}

/// Sleeps `millis`: short or long work.
#[job(retries = 3, display = "Soak sleep {millis} ms")]
pub(crate) async fn soak_sleep(State(log): State<ExecutionLog>, ctx: JobContext, millis: u64) {
    let kind = if millis >= 1_000 { "long" } else { "short" };
    let _run = log.start(ctx.id().as_uuid(), ctx.attempt(), kind);
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

/// Short work that must not be retried (`retries = 0`): it succeeds when it runs, so
/// only a fault charged to it as a failure can fail it.
#[job(retries = 0, display = "Soak once {millis} ms")]
pub(crate) async fn soak_once(State(log): State<ExecutionLog>, ctx: JobContext, millis: u64) {
    let _run = log.start(ctx.id().as_uuid(), ctx.attempt(), "once");
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

/// Fails its first two attempts.
#[job(retries = 3, display = "Soak failing {n}")]
pub(crate) async fn soak_failing(
    State(log): State<ExecutionLog>,
    ctx: JobContext,
    n: u32,
) -> Result<(), String> {
    let _run = log.start(ctx.id().as_uuid(), ctx.attempt(), "failing");
    tokio::time::sleep(Duration::from_millis(20)).await;
    if ctx.attempt() <= 2 {
        return Err(format!("failing {n} fails attempt {}", ctx.attempt()));
    }
    Ok(())
}

/// Panics on its first attempt.
#[job(retries = 3, display = "Soak panicking {n}")]
pub(crate) async fn soak_panicking(State(log): State<ExecutionLog>, ctx: JobContext, n: u32) {
    let _run = log.start(ctx.id().as_uuid(), ctx.attempt(), "panicking");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        ctx.attempt() > 1,
        "panicking {n} panics on its first attempt"
    );
}

/// Outlives its timeout on its first attempt.
#[job(retries = 3, timeout = "500ms", display = "Soak timing out {n}")]
pub(crate) async fn soak_timing_out(State(log): State<ExecutionLog>, ctx: JobContext, n: u32) {
    let _run = log.start(ctx.id().as_uuid(), ctx.attempt(), "timing-out");
    let _ = n;
    let millis = if ctx.attempt() == 1 { 2_000 } else { 20 };
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

/// The recurring job.
#[job(display = "Soak tick")]
pub(crate) async fn soak_tick(State(log): State<ExecutionLog>, ctx: JobContext) {
    let _run = log.start(ctx.id().as_uuid(), ctx.attempt(), "recurring");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// SplitMix64: a small seeded generator, so a seed names a job mix and fault schedule.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    /// A number in `low..high`.
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low).max(1)
    }

    fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(self.range(low, high))
    }
}

/// A worker node process.
struct Node {
    child: Child,
    pid: u32,
}

fn spawn_node(url: &str, log: &Path, out: &Path, index: usize) -> Result<Node> {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out.join(format!("soak-node-{index}.log")))?;
    let child = Command::new(std::env::current_exe()?)
        .arg(SOAK_NODE)
        .arg(url)
        .arg(log)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .context("starting a soak node")?;
    let pid = child.id().context("the node's pid")?;
    Ok(Node { child, pid })
}

/// A fault in progress, and when it ends.
enum Pending {
    /// Set this proxy (or all, `None`) back to passing.
    Heal(Option<usize>),
    /// Start this node again.
    Restart(usize),
}

/// Runs the soak and prints its report.
pub(crate) async fn run(soak: &Soak) -> Result<()> {
    std::fs::create_dir_all(&soak.out)?;
    let scratch = Scratch::create(Backend::Postgres, &soak.pg_url).await?;
    let jobs = scratch.jobs().await?;
    let pool = sqlx::PgPool::connect(scratch.url()).await?;
    let dir = tempfile::Builder::new().prefix("jobs-soak-").tempdir()?;
    let log = ExecutionLog::open(dir.path().join("executions"))?;
    let upstream = fault::address_of(scratch.url());
    let mut proxies = Vec::with_capacity(soak.nodes);
    let mut nodes = Vec::with_capacity(soak.nodes);
    for index in 0..soak.nodes {
        let proxy = FaultProxy::start(upstream).await?;
        nodes.push(Some(spawn_node(
            &proxy.url(scratch.url()),
            log.path(),
            &soak.out,
            index,
        )?));
        proxies.push(proxy);
    }
    jobs.recurring()
        .every("soak-tick", Duration::from_secs(2), SoakTick {})
        .await?;

    println!(
        "soak: {} nodes of {WORKERS} workers for {:.1} min, seed {}",
        soak.nodes,
        soak.duration.as_secs_f64() / 60.0,
        soak.seed
    );
    let mut rng = Rng(soak.seed);
    let started = Instant::now();
    let end = started + soak.duration;
    let mut enqueued: Vec<uuid::Uuid> = Vec::new();
    let mut killed: HashMap<u32, u64> = HashMap::new();
    let mut faults: HashMap<&'static str, u32> = HashMap::new();
    let mut pending: Vec<(Instant, Pending)> = Vec::new();
    let mut next_fault = started + rng.millis(3_000, 10_000);
    let mut n: u32 = 0;
    let mut ticker = tokio::time::interval(ENQUEUE_EVERY);
    while Instant::now() < end {
        ticker.tick().await;
        for _ in 0..BATCH {
            n += 1;
            let roll = rng.range(0, 100);
            let id = match roll {
                0..=1 => {
                    jobs.enqueue(SoakSleep {
                        millis: rng.range(2_000, 8_000),
                    })
                    .await?
                }
                2..=7 => jobs.enqueue(SoakFailing { n }).await?,
                8..=11 => jobs.enqueue(SoakPanicking { n }).await?,
                12..=15 => jobs.enqueue(SoakTimingOut { n }).await?,
                16..=35 => {
                    jobs.enqueue(SoakOnce {
                        millis: rng.range(5, 50),
                    })
                    .await?
                }
                _ => {
                    jobs.enqueue(SoakSleep {
                        millis: rng.range(5, 50),
                    })
                    .await?
                }
            };
            enqueued.push(id.as_uuid());
        }

        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(at, _)| *at <= now);
        pending = later;
        for (_, action) in due {
            match action {
                Pending::Heal(Some(index)) => proxies[index].set(Mode::Pass),
                Pending::Heal(None) => proxies.iter().for_each(|proxy| proxy.set(Mode::Pass)),
                Pending::Restart(index) => {
                    nodes[index] = Some(spawn_node(
                        &proxies[index].url(scratch.url()),
                        log.path(),
                        &soak.out,
                        index,
                    )?);
                }
            }
        }
        // One fault at a time: the next is drawn once the last has healed.
        if now >= next_fault && pending.is_empty() {
            let index = usize::try_from(rng.range(0, soak.nodes as u64))?;
            let (name, heal) = match rng.range(0, 4) {
                0 => {
                    proxies[index].set(Mode::Blackhole);
                    ("one node partitioned", Pending::Heal(Some(index)))
                }
                1 => {
                    proxies.iter().for_each(|proxy| proxy.set(Mode::Blackhole));
                    ("every node partitioned", Pending::Heal(None))
                }
                2 => {
                    proxies[index].set(Mode::Reset);
                    ("one node's connections reset", Pending::Heal(Some(index)))
                }
                _ => {
                    if let Some(mut node) = nodes[index].take() {
                        node.child.start_kill()?;
                        node.child.wait().await?;
                        killed.insert(node.pid, monotonic_ns());
                    }
                    ("one node killed and restarted", Pending::Restart(index))
                }
            };
            *faults.entry(name).or_default() += 1;
            let lasts = rng.millis(500, u64::try_from((SERVER_TIMEOUT * 4).as_millis())?);
            pending.push((now + lasts, heal));
            next_fault = now + lasts + rng.millis(2_000, 10_000);
        }
    }

    // Heal everything, stop the recurring job, and let the nodes drain.
    proxies.iter().for_each(|proxy| proxy.set(Mode::Pass));
    for (index, node) in nodes.iter_mut().enumerate() {
        if node.is_none() {
            *node = Some(spawn_node(
                &proxies[index].url(scratch.url()),
                log.path(),
                &soak.out,
                index,
            )?);
        }
    }
    jobs.recurring().delete("soak-tick").await?;
    let drain_started = Instant::now();
    while drain_started.elapsed() < DRAIN {
        if unfinished(&pool).await? == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let drained_in = drain_started.elapsed();
    for mut node in nodes.into_iter().flatten() {
        drop(node.child.stdin.take());
        if tokio::time::timeout(Duration::from_secs(30), node.child.wait())
            .await
            .is_err()
        {
            node.child.start_kill()?;
        }
    }

    let states: HashMap<uuid::Uuid, String> = sqlx::query_as("SELECT id, state FROM jobs_job")
        .fetch_all(&pool)
        .await?
        .into_iter()
        .collect();
    let runs = log.runs();
    let ran: HashSet<uuid::Uuid> = runs.iter().map(|run| run.job).collect();
    let overlaps = fault::overlaps(&runs, &killed);
    let lost = enqueued
        .iter()
        .filter(|id| match states.get(id) {
            None => true,
            Some(state) => state == "Succeeded" && !ran.contains(id),
        })
        .count();
    let stuck = states
        .values()
        .filter(|state| !matches!(state.as_str(), "Succeeded" | "Failed" | "Deleted"))
        .count();
    let falsely_failed = states.values().filter(|state| *state == "Failed").count();
    let mut by_kind: HashMap<&str, usize> = HashMap::new();
    for run in &runs {
        *by_kind.entry(run.kind.as_str()).or_default() += 1;
    }
    let mut by_kind: Vec<_> = by_kind.into_iter().collect();
    by_kind.sort();
    let mut faults: Vec<_> = faults.into_iter().collect();
    faults.sort();

    println!(
        "jobs enqueued        {} (plus {} recurring runs)",
        enqueued.len(),
        states.len().saturating_sub(enqueued.len())
    );
    println!("faults               {faults:?}");
    println!("drained in           {drained_in:.1?} after the last fault");
    println!("executions           {} {by_kind:?}", runs.len());
    println!("overlaps             {}", overlaps.len());
    println!("lost                 {lost}");
    println!("stuck                {stuck}");
    println!("falsely failed       {falsely_failed}");
    println!("reproduce            {}", soak.command());
    for overlap in overlaps.iter().take(5) {
        println!("  overlap: {overlap:?}");
    }
    let unfinished_or_failed: Vec<(uuid::Uuid, String, String, Option<String>)> = sqlx::query_as(
        "SELECT id, state, name, last_error FROM jobs_job \
         WHERE state NOT IN ('Succeeded', 'Deleted') ORDER BY id LIMIT 5",
    )
    .fetch_all(&pool)
    .await?;
    for (id, state, name, error) in unfinished_or_failed {
        println!("  {state}: {name} {id}: {}", error.unwrap_or_default());
    }
    drop(jobs);
    pool.close().await;
    scratch.remove().await?;
    if !overlaps.is_empty() || lost > 0 || stuck > 0 || falsely_failed > 0 {
        bail!(
            "the soak found {} overlaps, {lost} lost, {stuck} stuck and {falsely_failed} \
             falsely failed jobs",
            overlaps.len()
        );
    }
    Ok(())
}

/// Jobs not yet finished.
async fn unfinished(pool: &sqlx::PgPool) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM jobs_job WHERE state NOT IN ('Succeeded', 'Failed', 'Deleted')",
    )
    .fetch_one(pool)
    .await?)
}

/// A worker node: serves on `url`, recording executions in `log`, until its stdin
/// closes. Connecting is retried: a node may start while its proxy is cut off.
pub(crate) async fn node(url: &str, log: &Path) -> Result<()> {
    let log = ExecutionLog::open(log)?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let jobs = loop {
        match tokio::time::timeout(Duration::from_secs(5), Jobs::connect(url)).await {
            Ok(Ok(jobs)) => break jobs,
            failed => {
                if Instant::now() >= deadline {
                    bail!("the node could not connect: {failed:?}");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let server = JobServer::builder(jobs)
        .state(log)
        .worker_count(WORKERS)
        .poll_interval(POLL_INTERVAL)
        .server_timeout(SERVER_TIMEOUT)
        .shutdown_grace(Duration::from_secs(5))
        .start()
        .await?;
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    server.shutdown().await;
    Ok(())
}
