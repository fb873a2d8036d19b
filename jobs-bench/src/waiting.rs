//! Thousands of jobs waiting at once: each awaits a one-second timer, as a job awaiting
//! a model's reply does, with as many workers as jobs. Measured in a process of its own
//! (this binary again), so its peak resident memory is this figure's alone.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use jobs::Jobs;
use serde::{Deserialize, Serialize};
use tokio::time::timeout;

use crate::args::WAITING;
use crate::db::{Raw, Scratch};
use crate::enqueue;
use crate::stats::millis;
use crate::work::{self, AwaitModel};

/// Longest the measuring process may take before the figure is abandoned: longer than
/// its server is given, so that the process reports its own failure.
const LIMIT: Duration = Duration::from_secs(900);

/// What the measuring process reports, as one JSON line on its stdout.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Waited {
    /// From server start to the last result recorded.
    pub(crate) wall_ms: f64,
    /// The process's peak resident set (`VmHWM`), the backlog's enqueue included.
    pub(crate) peak_rss_kb: u64,
}

/// Runs the figure for `n` jobs in a child process.
pub(crate) async fn run(scratch: &Scratch, n: usize) -> Result<Waited> {
    scratch.migrate().await?;
    let child = tokio::process::Command::new(std::env::current_exe()?)
        .args([WAITING, scratch.url(), &n.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = timeout(LIMIT, child).await??;
    ensure!(
        output.status.success(),
        "the measuring process failed: {}",
        output.status
    );
    let stdout = String::from_utf8(output.stdout)?;
    let line = stdout
        .lines()
        .last()
        .context("no report from the measuring process")?;
    Ok(serde_json::from_str(line)?)
}

/// The measuring process: enqueues `n` waiting jobs on `url`, runs them all with `n`
/// workers, and prints a [`Waited`].
pub(crate) async fn child(url: &str, n: usize) -> Result<()> {
    let jobs = Jobs::connect(url).await?;
    enqueue::backlog(&jobs, n, |n| AwaitModel { n }).await?;
    let mut probe = Raw::connect(url).await?;
    let (server, wall) = work::serve_until_done(jobs, n, n, &mut probe).await?;
    let peak_rss_kb = peak_rss_kb()?;

    server.shutdown().await;
    let succeeded = probe.count("Succeeded").await?;
    ensure!(
        usize::try_from(succeeded)? == n,
        "{succeeded} of {n} jobs succeeded"
    );
    let waited = Waited {
        wall_ms: millis(wall),
        peak_rss_kb,
    };
    println!("{}", serde_json::to_string(&waited)?);
    Ok(())
}

/// The peak resident set size of this process, from `/proc/self/status`.
fn peak_rss_kb() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .context("no VmHWM in /proc/self/status")?;
    Ok(line.trim().trim_end_matches("kB").trim().parse()?)
}
