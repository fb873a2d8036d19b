//! Draining a backlog: a server starts on a table of enqueued no-op jobs and runs them
//! all; the clock stops when the last result is recorded.

use std::time::Duration;

use anyhow::{Result, ensure};
use jobs::JobServerBuilder;

use crate::db::{Client, Raw, Scratch};
use crate::enqueue;
use crate::stats::rate;
use crate::work::{self, Noop};

/// What a drain achieved.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Drained {
    /// Jobs per second, from server start to the last recorded result.
    pub(crate) rate: f64,
    /// Transactions committed per job while draining.
    pub(crate) commits_per_job: f64,
}

/// Drains `n` pre-enqueued no-op jobs with `workers` workers.
pub(crate) async fn run(scratch: &Scratch, n: usize, workers: usize) -> Result<Drained> {
    run_with(scratch, n, workers, false, None).await
}

/// [`run`] by a server whose maintenance rounds (rescue, prune) come every `poll`.
pub(crate) async fn run_polling(
    scratch: &Scratch,
    n: usize,
    workers: usize,
    poll: Duration,
) -> Result<Drained> {
    run_configured(scratch, n, workers, false, |builder| {
        builder.poll_interval(poll)
    })
    .await
}

/// [`run`], with the jobs' queue limited to `global` running at once across the cluster
/// (`global_queue_limit`): what a claim that counts the queue's running jobs costs.
pub(crate) async fn run_limited(
    scratch: &Scratch,
    n: usize,
    workers: usize,
    global: usize,
) -> Result<Drained> {
    run_with(scratch, n, workers, false, Some(global)).await
}

/// [`run`], with PostgreSQL's claims and results committed durably when `durable`, and
/// the queue limited to `global` across the cluster when set.
pub(crate) async fn run_with(
    scratch: &Scratch,
    n: usize,
    workers: usize,
    durable: bool,
    global: Option<usize>,
) -> Result<Drained> {
    run_configured(scratch, n, workers, durable, |builder| match global {
        Some(limit) => builder.global_queue_limit(jobs::DEFAULT_QUEUE, limit),
        None => builder,
    })
    .await
}

/// The drain, with the server's settings `configure` gives.
async fn run_configured(
    scratch: &Scratch,
    n: usize,
    workers: usize,
    durable: bool,
    configure: impl FnOnce(JobServerBuilder) -> JobServerBuilder,
) -> Result<Drained> {
    // The backlog comes through a client that is closed before counting starts.
    let filler = Client::open(scratch, None).await?;
    // Only this drain's jobs count: the table may hold others (the big-table figures,
    // one of which drains twice), which the server's maintenance may prune meanwhile.
    let noop = <Noop as jobs::Job>::DESCRIPTOR.name();
    let mut probe = Raw::connect(scratch.url()).await?;
    let earlier = probe.count_named("Succeeded", noop).await?;
    probe.close().await?;
    enqueue::backlog(&filler.jobs, n, |n| Noop { n }).await?;
    filler.close().await;

    let commits = scratch.commits().await?;
    let before = commits.read().await?;
    let client = Client::open_with(scratch, Some(&commits), durable).await?;
    let mut probe = Raw::connect(scratch.url()).await?;
    let (server, elapsed) =
        work::serve_until_done_with(client.jobs.clone(), workers, n, &mut probe, configure).await?;
    server.shutdown().await;
    client.close().await;
    let succeeded = probe.count_named("Succeeded", noop).await? - earlier;
    probe.close().await?;
    let after = commits.read().await?;
    commits.close().await;
    ensure!(
        usize::try_from(succeeded)? == n,
        "{succeeded} of {n} jobs succeeded"
    );
    Ok(Drained {
        rate: rate(n, elapsed),
        commits_per_job: after.saturating_sub(before) as f64 / n as f64,
    })
}
