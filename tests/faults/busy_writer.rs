//! A server draining short jobs on SQLite keeps the file's write lock busy with its own
//! claims and results, back to back. Its heartbeat's renewals must still go through in
//! time, or the server fences itself off in the middle of the drain: it stops its jobs
//! and drops those claimed ahead, for no fault at all. It did, while the heartbeat wrote
//! through a connection of its own: SQLite gives a connection that waits for the write
//! lock no turn (it retries after 1, 2, 5… ms), and each try found the lock taken again.

use std::time::Duration;

use jobs::prelude::*;
use jobs::{JobServer, JobState, Jobs};
use tokio::time::Instant;

use crate::support::fault;
use crate::support::{Backend, TestDb};

const JOBS: u32 = 60_000;
/// A fence falls after half of it without a renewal; each renewal may wait a quarter.
const SERVER_TIMEOUT: Duration = Duration::from_millis(500);

#[job(display = "Nothing {n}")]
async fn nothing(n: u32) {
    let _ = n;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_busy_with_its_own_writes_renews_its_leases() {
    let _serial = fault::serial().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let jobs = Jobs::connect(&db.url).await.unwrap();
    jobs.enqueue_many((0..JOBS).map(|n| Nothing { n }))
        .await
        .unwrap();
    let server = JobServer::builder(jobs.clone())
        .worker_count(16)
        .poll_interval(Duration::from_millis(200))
        .server_timeout(SERVER_TIMEOUT)
        .start()
        .await
        .unwrap();
    let metrics = server.metrics();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(120);
    loop {
        let counts = jobs.count_by_state().await.unwrap();
        let succeeded = counts
            .iter()
            .find(|(state, _)| *state == JobState::Succeeded)
            .map_or(0, |(_, n)| *n);
        if succeeded == u64::from(JOBS) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not drained in 120 s: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained = started.elapsed();
    server.shutdown().await;
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
