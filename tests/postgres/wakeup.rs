//! Wake-ups across processes: a job enqueued by this process starts in another, idle
//! one (polling every 30 s) at once, through PostgreSQL `LISTEN/NOTIFY`, and still does
//! after that process's listening connection was killed.

#![cfg(feature = "postgres")]

use std::time::Duration;

use crate::support::process::{self, Child};
use crate::support::{Backend, TestDb, wait_for_state, wait_until};
use jobs::prelude::*;
use jobs::{JobServer, Jobs};
use sqlx::PgPool;

/// Far longer than any wait in this test: a job that starts in time was not polled for.
const POLL_INTERVAL: Duration = Duration::from_secs(30);
/// Loose on purpose: the point is "not at the next poll", and CI machines stall.
const MAX_LATENCY: Duration = Duration::from_secs(5);

/// Which backend of the test database listens for jobs (the storage names it).
const LISTENER: &str = "SELECT pid FROM pg_stat_activity \
    WHERE datname = current_database() AND application_name LIKE '%listener' \
        AND query LIKE 'LISTEN%'";

#[job]
async fn ping() {}

/// The idle worker process: a server that polls only every 30 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child() {
    if process::role().as_deref() != Some("idle") {
        return;
    }
    let jobs = Jobs::connect(&process::database_url())
        .await
        .expect("child connects");
    process::serve_until_parent_gone(JobServer::builder(jobs).poll_interval(POLL_INTERVAL)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_enqueued_here_starts_at_once_in_an_idle_process() {
    let db = TestDb::new(Backend::Postgres).await;
    // No server in this process: only the other one can run the jobs.
    let jobs = Jobs::connect(&db.url).await.unwrap();
    let pool = PgPool::connect(&db.url).await.unwrap();
    let child = Child::spawn(module_path!(), "idle", &db.url, &[]);
    wait_until("the other process listens", || async {
        listener(&pool).await.is_some()
    })
    .await;
    // Let its first claims pass, so it is asleep until its next poll.
    tokio::time::sleep(Duration::from_millis(500)).await;

    for round in 1..=5 {
        let latency = ping_latency(&jobs).await;
        println!("cross-process wake-up {round}: {latency:?}");
        assert!(latency < MAX_LATENCY, "{latency:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Kill the listening connection: the listener reconnects by itself, and jobs
    // enqueued meanwhile are not left for the poll.
    let killed = listener(&pool).await.unwrap();
    let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(killed)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(terminated);
    let latency = ping_latency(&jobs).await;
    println!("cross-process wake-up right after the listener's connection was killed: {latency:?}");
    assert!(latency < MAX_LATENCY, "{latency:?}");
    wait_until("the listener is back on a new connection", || async {
        listener(&pool).await.is_some_and(|pid| pid != killed)
    })
    .await;
    let latency = ping_latency(&jobs).await;
    println!("cross-process wake-up after the listener reconnected: {latency:?}");
    assert!(latency < MAX_LATENCY, "{latency:?}");

    child.stop(Duration::from_secs(20)).await;
}

/// Enqueues a job and returns how long it took to start, by the history's times.
async fn ping_latency(jobs: &Jobs) -> Duration {
    let id = jobs.enqueue(Ping {}).await.unwrap();
    let info = wait_for_state(jobs, id, JobState::Succeeded).await;
    let started = info
        .history
        .iter()
        .find(|entry| entry.state == JobState::Processing)
        .expect("a Processing entry")
        .at;
    (started - info.created_at).to_std().unwrap_or_default()
}

async fn listener(pool: &PgPool) -> Option<i32> {
    sqlx::query_scalar(LISTENER)
        .fetch_optional(pool)
        .await
        .unwrap()
}
