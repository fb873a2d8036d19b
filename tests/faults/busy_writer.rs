//! A server draining short jobs on SQLite keeps the file's write lock busy with its own
//! claims and results, back to back. Its heartbeat's renewals must still go through in
//! time, or the server fences itself off in the middle of the drain: it stops its jobs
//! and drops those claimed ahead, for no fault at all. It did, while the heartbeat wrote
//! through a connection of its own: SQLite gives a connection that waits for the write
//! lock no turn (it retries after 1, 2, 5… ms), and each try found the lock taken again.

use std::collections::HashMap;
use std::time::Duration;

use jobs::{JobServer, Jobs};
use tokio::time::Instant;

use crate::support::fault::{self, ExecutionLog};
use crate::support::{Backend, TestDb};
use crate::{Work, assert_no_overlaps, wait_all_succeeded};

const JOBS: u32 = 60_000;
/// A fence falls after half of it without a renewal; each renewal may wait a quarter.
const SERVER_TIMEOUT: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_busy_with_its_own_writes_renews_its_leases() {
    let _serial = fault::serial().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let log = ExecutionLog::open(dir.path().join("executions")).unwrap();
    let jobs = Jobs::connect(&db.url).await.unwrap();
    jobs.enqueue_many((0..JOBS).map(|n| Work { n, millis: 0 }))
        .await
        .unwrap();
    let server = JobServer::builder(jobs.clone())
        .state(log.clone())
        .worker_count(16)
        .poll_interval(Duration::from_millis(200))
        .server_timeout(SERVER_TIMEOUT)
        .start()
        .await
        .unwrap();
    let metrics = server.metrics();
    let started = Instant::now();
    wait_all_succeeded(
        &jobs,
        u64::from(JOBS),
        Duration::from_secs(120),
        &log,
        &HashMap::new(),
    )
    .await;
    let drained = started.elapsed();
    server.shutdown().await;
    assert_no_overlaps(&log.runs(), &HashMap::new());
    println!(
        "{JOBS} jobs drained in {drained:.1?} ({:.0} jobs/s), {} fence(s)",
        f64::from(JOBS) / drained.as_secs_f64(),
        metrics.fences()
    );
    assert_eq!(
        metrics.fences(),
        0,
        "the server fenced itself off while it drained ({drained:.1?}): its heartbeat \
         found SQLite's write lock taken by the server's own writes"
    );
}
