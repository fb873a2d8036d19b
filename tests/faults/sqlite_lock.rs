//! SQLite's write lock held by another process for longer than the library's busy
//! timeout (30 s) while two nodes drain jobs: every job ends `Succeeded`, none `Failed`,
//! no two executions of a job overlap, and the nodes resume by themselves.

use std::collections::HashMap;
use std::time::Duration;

use jobs::Jobs;
use tokio::time::Instant;

use crate::node::{Node, spawn_lock_holder};
use crate::support::fault::{self, ExecutionLog, sqlite_write_locked, wait_within};
use crate::support::{Backend, TestDb};
use crate::{Work, assert_all_ended, assert_no_overlaps, wait_all_succeeded};

const JOBS: u32 = 600;
/// Longer than the 30 s busy timeout of the library's SQLite connections.
const LOCK_HELD: Duration = Duration::from_secs(35);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_lock_held_longer_than_the_busy_timeout() {
    let _serial = fault::serial().await;
    let started = Instant::now();
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let log = ExecutionLog::open(dir.path().join("executions")).unwrap();
    let jobs = Jobs::connect(&db.url).await.unwrap();
    jobs.enqueue_many((0..JOBS).map(|n| Work {
        n,
        millis: if n % 50 == 0 { 3_000 } else { 20 },
    }))
    .await
    .unwrap();
    let node = Node::new(8, Duration::from_secs(2));
    let nodes = [node.spawn(&db.url, &log), node.spawn(&db.url, &log)];
    wait_within("100 jobs ran", Duration::from_secs(30), || async {
        log.runs().len() >= 100
    })
    .await;

    let lock = spawn_lock_holder(&db.url, LOCK_HELD);
    wait_within(
        "the other process holds the write lock",
        Duration::from_secs(10),
        || sqlite_write_locked(&db.url),
    )
    .await;
    let locked_at = Instant::now();
    log.mark("locked");
    lock.stop(LOCK_HELD + Duration::from_secs(10)).await;
    log.mark("unlocked");
    let held = locked_at.elapsed();

    wait_all_succeeded(
        &jobs,
        u64::from(JOBS),
        Duration::from_secs(60),
        &log,
        &HashMap::new(),
    )
    .await;
    for node in nodes {
        node.stop(Duration::from_secs(20)).await;
    }
    let runs = log.runs();
    assert_all_ended(&runs);
    assert_no_overlaps(&runs, &HashMap::new());
    println!(
        "{JOBS} jobs, the write lock held {held:.1?} by another process: {} executions, \
         {:.1?}",
        runs.len(),
        started.elapsed()
    );
}
