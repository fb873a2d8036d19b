//! Fault tests: real worker processes on real databases, with the database cut off,
//! partitioned, restarted, locked, a clock set wrong, a process killed, a job deleted
//! and requeued from elsewhere, a runtime blocked by user code. Every execution of every
//! job is recorded (start and end on the host's monotonic clock, see
//! `support::fault::proxy`), and each test asserts that no two executions of one job
//! overlapped, beside what its fault must not cause. The tests run one at a time.

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod blocked_runtime;
mod busy_writer;
mod claimed_ahead;
#[cfg(feature = "postgres")]
mod clock_skew;
mod delete_requeue;
#[cfg(feature = "postgres")]
mod harness;
#[cfg(feature = "postgres")]
mod late_release;
mod node;
#[cfg(feature = "postgres")]
mod outage;
#[cfg(feature = "postgres")]
mod partition;
mod sqlite_lock;

use std::collections::HashMap;
use std::time::Duration;

use jobs::prelude::*;

use crate::support::fault::{ExecutionLog, Run, overlaps};

/// The poll interval of every node: also its heartbeat interval.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// A short job: sleeps `millis` (a few of them long, to be running when a fault hits).
#[job(display = "Work {n}")]
async fn work(
    State(log): State<ExecutionLog>,
    ctx: JobContext,
    n: u32,
    millis: u64,
) -> Result<(), String> {
    let _run = log.start(ctx.id().as_uuid(), ctx.attempt(), "work");
    let _ = n;
    tokio::time::sleep(Duration::from_millis(millis)).await;
    Ok(())
}

/// Blocks its worker thread (not just its task) for `millis`, as careless user code does.
#[job(display = "Block {millis} ms")]
async fn block(State(log): State<ExecutionLog>, ctx: JobContext, millis: u64) {
    let _run = log.start(ctx.id().as_uuid(), ctx.attempt(), "block");
    std::thread::sleep(Duration::from_millis(millis));
}

/// A payment that must not be retried, with a compensation as its `on_failure`.
#[job(retries = 0, display = "Charge {n}")]
async fn charge(State(log): State<ExecutionLog>, ctx: JobContext, n: u32) -> Result<(), String> {
    let _run = log.start(ctx.id().as_uuid(), ctx.attempt(), "charge");
    tokio::time::sleep(Duration::from_millis(1 + u64::from(n % 5))).await;
    Ok(())
}

/// The compensation: runs only when its charge failed for good.
#[job(display = "Refund {n}")]
async fn refund(State(log): State<ExecutionLog>, ctx: JobContext, n: u32) {
    let _run = log.start(ctx.id().as_uuid(), ctx.attempt(), "refund");
    let _ = n;
}

/// Asserts that no two executions of one job overlapped; an execution that never ended
/// ends at its process's kill in `killed`.
#[track_caller]
pub fn assert_no_overlaps(runs: &[Run], killed: &HashMap<u32, u64>) {
    let found = overlaps(runs, killed);
    assert!(
        found.is_empty(),
        "{} overlapping pairs of executions of {} jobs (first: attempt and pid of the \
         earlier, of the later, overlap in ms): {:?}",
        found.len(),
        found
            .iter()
            .map(|overlap| overlap.job)
            .collect::<std::collections::HashSet<_>>()
            .len(),
        &found[..found.len().min(8)]
    );
}

/// Asserts that every execution ended (no process was killed).
#[track_caller]
pub fn assert_all_ended(runs: &[Run]) {
    let open: Vec<&Run> = runs.iter().filter(|run| run.end.is_none()).collect();
    assert!(
        open.is_empty(),
        "{} executions never ended: {:?}",
        open.len(),
        &open[..open.len().min(8)]
    );
}

/// How many executions each job had.
pub fn executions_per_job(runs: &[Run]) -> HashMap<uuid::Uuid, usize> {
    let mut count = HashMap::new();
    for run in runs {
        *count.entry(run.job).or_default() += 1;
    }
    count
}

/// Waits until all `total` jobs of the database of `jobs` are `Succeeded`. Fails at
/// once when one is `Failed` (with its history); after `timeout`, fails on overlapping
/// executions first, if any, else on the counts.
pub async fn wait_all_succeeded(
    jobs: &jobs::Jobs,
    total: u64,
    timeout: Duration,
    log: &ExecutionLog,
    killed: &HashMap<u32, u64>,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let counts = jobs.count_by_state().await;
        if let Ok(counts) = &counts {
            if counts == &[(JobState::Succeeded, total)] {
                return;
            }
            if counts.iter().any(|(state, _)| *state == JobState::Failed) {
                let failed = jobs
                    .list(jobs::JobQuery::state(JobState::Failed).limit(3))
                    .await
                    .unwrap();
                let mut histories = Vec::new();
                for job in &failed.items {
                    let info = jobs.get(job.id).await.unwrap();
                    histories.push(
                        info.history
                            .iter()
                            .map(|event| {
                                format!(
                                    "{} attempt {}{}",
                                    event.state,
                                    event.attempt,
                                    event
                                        .error
                                        .as_ref()
                                        .map(|error| format!(": {}", error.message))
                                        .unwrap_or_default()
                                )
                            })
                            .collect::<Vec<_>>(),
                    );
                }
                panic!("jobs ended Failed ({counts:?}); histories of the first: {histories:#?}");
            }
        }
        if tokio::time::Instant::now() >= deadline {
            let runs = log.runs();
            assert_no_overlaps(&runs, killed);
            let mut stuck = Vec::new();
            for state in [
                JobState::Processing,
                JobState::Enqueued,
                JobState::Scheduled,
            ] {
                let page = jobs
                    .list(jobs::JobQuery::state(state).limit(3))
                    .await
                    .map(|page| page.items)
                    .unwrap_or_default();
                for job in page {
                    let info = jobs.get(job.id).await.unwrap();
                    let ran = runs
                        .iter()
                        .filter(|run| run.job == job.id.as_uuid())
                        .map(|run| (run.attempt, run.end.is_some()))
                        .collect::<Vec<_>>();
                    stuck.push(format!(
                        "{} {} attempt {} owner {:?}; executions (attempt, ended) {ran:?}",
                        job.id, info.state, info.attempt, info.owner
                    ));
                }
            }
            panic!(
                "not every job succeeded within {timeout:?}: {counts:?}; for example {stuck:#?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
