//! Three worker processes on one PostgreSQL database drain a queue limited to five
//! running jobs across all of them: each execution records its start and end by the
//! database's clock, and the most ever running at once is exactly the limit. The mean
//! number running (the executions' total time over the run's) shows how close to it the
//! queue stays.

#![cfg(feature = "postgres")]

use std::time::Duration;

use crate::support::process::{self, Child};
use crate::support::{Backend, TestDb};
use jobs::prelude::*;
use jobs::{JobServer, Jobs};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

const LIMIT: usize = 5;
const PROCESSES: usize = 3;
/// Workers per process: together far more than the limit.
const WORKERS: usize = 8;

/// Each execution leaves a row with its start and end by the database's clock.
#[job(queue = "render", display = "Render {n}")]
async fn render(State(pool): State<PgPool>, n: u32, millis: u64) -> Result<(), sqlx::Error> {
    let _ = n;
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO execution (started) VALUES (clock_timestamp()) RETURNING seq",
    )
    .fetch_one(&pool)
    .await?;
    tokio::time::sleep(Duration::from_millis(millis)).await;
    sqlx::query("UPDATE execution SET ended = clock_timestamp() WHERE seq = $1")
        .bind(seq)
        .execute(&pool)
        .await?;
    Ok(())
}

/// A worker process: the same global limit as every other, until its parent is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child() {
    if process::role().as_deref() != Some("limited") {
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
        .global_queue_limit("render", LIMIT)
        .poll_interval(Duration::from_millis(200));
    process::serve_until_parent_gone(server).await;
}

/// What a run measured.
struct Figures {
    most: i64,
    mean: f64,
    took: Duration,
}

async fn drain(jobs_count: u32, millis: u64) -> Figures {
    let db = TestDb::new(Backend::Postgres).await;
    let jobs = Jobs::connect(&db.url).await.unwrap();
    let pool = PgPool::connect(&db.url).await.unwrap();
    sqlx::query(
        "CREATE TABLE execution (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            started timestamptz NOT NULL,
            ended timestamptz)",
    )
    .execute(&pool)
    .await
    .unwrap();
    jobs.enqueue_many((0..jobs_count).map(|n| Render { n, millis }))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let children: Vec<Child> = (0..PROCESSES)
        .map(|_| Child::spawn(module_path!(), "limited", &db.url, &[]))
        .collect();
    let total = u64::from(jobs_count);
    let budget = Duration::from_millis(millis) * jobs_count / 2 + Duration::from_secs(60);
    let deadline = tokio::time::Instant::now() + budget;
    while jobs.count_by_state().await.unwrap() != [(JobState::Succeeded, total)] {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not drained in time: {:?}",
            jobs.count_by_state().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    for child in children {
        child.stop(Duration::from_secs(20)).await;
    }
    // Ends before starts at the same instant: a job that ended made room for the next.
    let (most, mean): (i64, f64) = sqlx::query_as(
        "WITH edge AS ( \
             SELECT started AS at, 1 AS step FROM execution \
             UNION ALL SELECT ended, -1 FROM execution \
         ), running AS ( \
             SELECT sum(step) OVER (ORDER BY at, step ROWS UNBOUNDED PRECEDING) AS n FROM edge \
         ) \
         SELECT (SELECT max(n) FROM running)::bigint, \
             (SELECT sum(extract(epoch FROM ended - started)) \
                 / extract(epoch FROM max(ended) - min(started)) FROM execution)::float8",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let executions: i64 = sqlx::query_scalar("SELECT count(*) FROM execution")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(executions, i64::from(jobs_count), "each job ran once");
    Figures { most, mean, took }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_never_run_more_of_a_queue_than_its_global_limit() {
    let figures = drain(60, 100).await;
    assert_eq!(figures.most, LIMIT as i64, "the most running at once");
    println!(
        "60 jobs of 100 ms, limit {LIMIT} over {PROCESSES} processes: at most {} at once, \
         {:.2} on average, in {:.1?}",
        figures.most, figures.mean, figures.took
    );
}

/// The figure: 500 jobs of 200 ms (`--ignored --nocapture` to see it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement of about 25 s"]
async fn five_hundred_jobs_of_200ms_under_a_global_limit_of_five() {
    let figures = drain(500, 200).await;
    assert_eq!(figures.most, LIMIT as i64, "the most running at once");
    println!(
        "500 jobs of 200 ms, limit {LIMIT} over {PROCESSES} processes: at most {} at once, \
         {:.2} on average, in {:.1?}",
        figures.most, figures.mean, figures.took
    );
}
