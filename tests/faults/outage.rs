//! PostgreSQL unreachable for 30 s in the middle of draining 5,000 jobs on three worker
//! processes: 10 s blackholed (connections hang), 5 s reset (connections cut, new ones
//! refused), then the server itself crashes (`pg_ctl stop -m immediate`) and comes back
//! after 15 s more. A few jobs run 40 s, so some are running from before the outage to
//! after it. Every job ends `Succeeded`, none `Failed`, no two executions of a job
//! overlap, the servers resume by themselves, and each reported the outage (unhealthy,
//! as `/metrics` and the dashboard show) while it lasted.

use std::collections::HashMap;
use std::time::Duration;

use jobs::prelude::*;
use jobs::{JobQuery, Jobs};
use tokio::time::Instant;

use crate::node::Node;
use crate::support::fault::{self, ExecutionLog, FaultProxy, Mode, OwnPostgres, wait_within};
use crate::support::process::Child;
use crate::{Work, assert_all_ended, assert_no_overlaps, executions_per_job, wait_all_succeeded};

const JOBS: u32 = 5_000;
const PROCESSES: usize = 3;
const WORKERS: usize = 16;
const SERVER_TIMEOUT: Duration = Duration::from_secs(2);
/// One job in this many runs for longer than the outage: those that start before it
/// are still running when the database comes back.
const LONG_EVERY: u32 = 500;
const LONG: u64 = 40_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thirty_second_outage_while_three_processes_drain_five_thousand_jobs() {
    let _serial = fault::serial().await;
    let started = Instant::now();
    let postgres = tokio::task::spawn_blocking(OwnPostgres::start)
        .await
        .unwrap();
    let proxy = FaultProxy::start(postgres.addr()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = ExecutionLog::open(dir.path().join("executions")).unwrap();

    // The test reads and writes past the proxy; the nodes go through it.
    let jobs = Jobs::connect(&postgres.url()).await.unwrap();
    let ids = jobs
        .enqueue_many((0..JOBS).map(|n| Work {
            n,
            millis: if n % LONG_EVERY == 0 {
                LONG
            } else {
                10 + u64::from(n % 20)
            },
        }))
        .await
        .unwrap();
    let node = Node::new(WORKERS, SERVER_TIMEOUT);
    let mut children: Vec<Child> = (0..PROCESSES)
        .map(|_| node.spawn(&proxy.url(&postgres.url()), &log))
        .collect();

    wait_within("1,000 jobs succeeded", Duration::from_secs(60), || async {
        succeeded(&jobs).await >= 1_000
    })
    .await;
    let before = succeeded(&jobs).await;

    log.mark("blackhole");
    proxy.set(Mode::Blackhole);
    tokio::time::sleep(Duration::from_secs(10)).await;
    log.mark("reset");
    proxy.set(Mode::Reset);
    tokio::time::sleep(Duration::from_secs(5)).await;
    log.mark("crash");
    let postgres = tokio::task::spawn_blocking(move || {
        postgres.crash();
        postgres
    })
    .await
    .unwrap();
    // Connections now reach a stopped server: refused.
    proxy.set(Mode::Pass);
    tokio::time::sleep(Duration::from_secs(15)).await;
    let postgres = tokio::task::spawn_blocking(move || {
        postgres.start_again();
        postgres
    })
    .await
    .unwrap();
    log.mark("back");
    let outage_over = Instant::now();

    // The servers resume by themselves: no process is restarted.
    wait_all_succeeded(
        &jobs,
        u64::from(JOBS),
        Duration::from_secs(90),
        &log,
        &HashMap::new(),
    )
    .await;
    let resumed_in = outage_over.elapsed();
    for child in children.drain(..) {
        child.stop(Duration::from_secs(20)).await;
    }

    // Every job Succeeded (checked above), none Failed; each ran; none overlapped.
    let failed = jobs.list(JobQuery::state(JobState::Failed)).await.unwrap();
    assert!(failed.items.is_empty(), "failed: {:?}", failed.items);
    let runs = log.runs();
    let per_job = executions_per_job(&runs);
    for id in &ids {
        assert!(per_job.contains_key(&id.as_uuid()), "job {id} never ran");
    }
    assert_all_ended(&runs);
    assert_no_overlaps(&runs, &HashMap::new());
    assert_outage_shown(&log.marks(), PROCESSES);
    let twice = per_job.values().filter(|count| **count > 1).count();
    println!(
        "{JOBS} jobs on {PROCESSES} processes in {:.1?}; {before} done before the outage; \
         all done {resumed_in:.1?} after it; {} executions, {twice} jobs ran more than once",
        started.elapsed(),
        runs.len(),
    );
    drop(postgres);
}

/// Every node reported itself unhealthy (what `/metrics` and the dashboard show) during
/// the outage, and healthy again before the end; none while the database answered
/// before it.
fn assert_outage_shown(marks: &[(String, u64)], nodes: usize) {
    let at = |word: &str| {
        marks
            .iter()
            .find(|(mark, _)| mark == word)
            .map(|(_, at)| *at)
            .unwrap_or_else(|| panic!("no mark {word}"))
    };
    let (cut, back) = (at("blackhole"), at("back"));
    let mut went_down: HashMap<&str, u64> = HashMap::new();
    let mut came_back: HashMap<&str, u64> = HashMap::new();
    for (mark, at) in marks {
        if let Some(node) = mark.strip_prefix("unhealthy:") {
            assert!(
                *at > cut,
                "node {node} reported unhealthy before the outage began"
            );
            went_down.entry(node).or_insert(*at);
        } else if let Some(node) = mark.strip_prefix("healthy:") {
            came_back.insert(node, *at);
        }
    }
    assert_eq!(
        went_down.len(),
        nodes,
        "every node reports the outage: {marks:?}"
    );
    for (node, down) in &went_down {
        assert!(*down < back, "node {node} saw the outage while it lasted");
        let up = came_back
            .get(node)
            .unwrap_or_else(|| panic!("node {node} never reported healthy again: {marks:?}"));
        assert!(up > down, "node {node} healthy again after the outage");
    }
}

async fn succeeded(jobs: &Jobs) -> u64 {
    jobs.count_by_state()
        .await
        .map(|counts| {
            counts
                .iter()
                .find(|(state, _)| *state == JobState::Succeeded)
                .map_or(0, |(_, count)| *count)
        })
        .unwrap_or(0)
}
