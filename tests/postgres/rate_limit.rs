//! The acceptance of queue rates: three worker processes on one PostgreSQL database
//! drain 200 no-op jobs of a queue rated at 20 per second. Each execution records its
//! start by the database's clock; no window of one second (closed, from each start)
//! holds more than 20 starts, the first start to the last takes 10 s ± 10 %, and every
//! job succeeded at its first attempt: none was charged one for waiting.

#![cfg(feature = "postgres")]

use std::time::Duration;

use crate::drain::{create_executions, drain, execution};
use crate::support::process;
use crate::support::{Backend, TestDb};
use jobs::prelude::*;
use jobs::{JobServer, Jobs, Rate};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

const RATE: u32 = 20;
const JOBS: u32 = 200;
const PROCESSES: usize = 3;
/// Workers per process: together more than the rate lets start in a second.
const WORKERS: usize = 8;

#[job(queue = "calls", display = "Call {n}")]
async fn call_api(State(pool): State<PgPool>, n: u32) -> Result<(), sqlx::Error> {
    let _ = n;
    execution(&pool, "calls", 0).await
}

/// A worker process: the same rate as every other, until its parent is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child() {
    if process::role().as_deref() != Some("rated") {
        return;
    }
    let url = process::database_url();
    let jobs = Jobs::connect(&url).await.expect("child connects");
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .expect("job pool");
    let server = JobServer::builder(jobs)
        .state(pool)
        .worker_count(WORKERS)
        .queue_rate("calls", Rate::per(RATE, Duration::from_secs(1)))
        .poll_interval(Duration::from_millis(200));
    process::serve_until_parent_gone(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_start_no_more_of_a_rated_queue_than_its_rate() {
    let db = TestDb::new(Backend::Postgres).await;
    let jobs = Jobs::connect(&db.url).await.unwrap();
    let pool = PgPool::connect(&db.url).await.unwrap();
    create_executions(&pool).await;
    jobs.enqueue_many((0..JOBS).map(|n| CallApi { n }))
        .await
        .unwrap();
    let figures = drain(
        &jobs,
        module_path!(),
        "rated",
        &db.url,
        PROCESSES,
        u64::from(JOBS),
        Duration::from_secs(60),
    )
    .await;
    // The most starts in any one second: every closed window [s, s + 1 s] from a start s.
    let (most, span): (i64, f64) = sqlx::query_as(
        "SELECT (SELECT max(n) FROM (SELECT (SELECT count(*) FROM execution AS other \
                 WHERE other.started BETWEEN first.started \
                     AND first.started + interval '1 second') AS n \
             FROM execution AS first) AS windows)::bigint, \
             extract(epoch FROM max(started) - min(started))::float8 \
         FROM execution",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let (succeeded, charged): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE state = 'Succeeded' AND attempt = 1), \
             count(*) FILTER (WHERE attempt <> 1) FROM jobs_job",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    println!(
        "{JOBS} jobs at {RATE}/1s over {PROCESSES} processes: at most {most} starts in a \
         second, {span:.2} s from the first start to the last, drained in {:.1?}",
        figures.took
    );
    assert!(most <= i64::from(RATE), "{most} starts within one second");
    assert!(
        (9.0..=11.0).contains(&span),
        "{span:.2} s from the first start to the last"
    );
    assert_eq!(
        (succeeded, charged),
        (i64::from(JOBS), 0),
        "every job succeeded at its first attempt"
    );
}
