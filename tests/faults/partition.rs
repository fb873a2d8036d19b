//! One node of three partitioned from PostgreSQL (its own proxy blackholes; the other two
//! still reach the database) for four times the server timeout, while it runs 16 jobs
//! that take longer than the server timeout. Never two executions of a job at once; the
//! rescued jobs run once elsewhere.

use std::collections::HashMap;
use std::time::Duration;

use jobs::Jobs;
use tokio::time::Instant;

use crate::node::Node;
use crate::support::fault::{self, ExecutionLog, FaultProxy, Mode, wait_within};
use crate::support::{Backend, TestDb};
use crate::{Work, assert_all_ended, assert_no_overlaps, wait_all_succeeded};

const JOBS: u32 = 16;
const SERVER_TIMEOUT: Duration = Duration::from_secs(2);
const JOB_LENGTH: Duration = Duration::from_secs(10);
const PARTITION: Duration = Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_of_three_partitioned_longer_than_the_server_timeout() {
    let _serial = fault::serial().await;
    let started = Instant::now();
    let db = TestDb::new(Backend::Postgres).await;
    let upstream = fault::proxy::address_of(&db.url);
    let mut proxies = Vec::new();
    for _ in 0..3 {
        proxies.push(FaultProxy::start(upstream).await.unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let log = ExecutionLog::open(dir.path().join("executions")).unwrap();
    let jobs = Jobs::connect(&db.url).await.unwrap();
    let ids = jobs
        .enqueue_many((0..JOBS).map(|n| Work {
            n,
            millis: u64::try_from(JOB_LENGTH.as_millis()).unwrap(),
        }))
        .await
        .unwrap();

    // The first node takes all 16 jobs; then the two others join.
    let node = Node::new(16, SERVER_TIMEOUT);
    let cut_off = node.spawn(&proxies[0].url(&db.url), &log);
    let cut_off_pid = cut_off.pid();
    wait_within(
        "the first node runs every job",
        Duration::from_secs(20),
        || async {
            log.runs()
                .iter()
                .filter(|run| run.pid == cut_off_pid)
                .count()
                == ids.len()
        },
    )
    .await;
    let others = [
        node.spawn(&proxies[1].url(&db.url), &log),
        node.spawn(&proxies[2].url(&db.url), &log),
    ];

    log.mark("partition");
    proxies[0].set(Mode::Blackhole);
    tokio::time::sleep(PARTITION).await;
    proxies[0].set(Mode::Pass);
    log.mark("healed");

    wait_all_succeeded(
        &jobs,
        u64::from(JOBS),
        Duration::from_secs(40),
        &log,
        &HashMap::new(),
    )
    .await;
    cut_off.stop(Duration::from_secs(20)).await;
    for other in others {
        other.stop(Duration::from_secs(20)).await;
    }

    let runs = log.runs();
    assert_all_ended(&runs);
    assert_no_overlaps(&runs, &HashMap::new());
    // Each job the cut-off node was running is rescued and runs exactly once elsewhere.
    for id in &ids {
        let elsewhere = runs
            .iter()
            .filter(|run| run.job == id.as_uuid() && run.pid != cut_off_pid)
            .count();
        assert_eq!(
            elsewhere, 1,
            "job {id} ran {elsewhere} times on the nodes that still reached the database"
        );
    }
    println!(
        "{JOBS} jobs of {JOB_LENGTH:?}, one node cut off for {PARTITION:?}: {} executions, \
         {:.1?}",
        runs.len(),
        started.elapsed()
    );
}
