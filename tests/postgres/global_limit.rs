//! Three worker processes on one PostgreSQL database drain a queue limited to five
//! running jobs across all of them: each execution records its start and end by the
//! database's clock, and the most ever running at once is exactly the limit. The mean
//! number running (the executions' total time over the run's) shows how close to it the
//! queue stays.

#![cfg(feature = "postgres")]

use std::time::Duration;

use crate::drain::{Figures, child_connections, create_executions, drain, execution};
use crate::support::process;
use crate::support::{Backend, TestDb};
use jobs::prelude::*;
use jobs::{JobServer, Jobs};
use sqlx::PgPool;

const LIMIT: usize = 5;
const PROCESSES: usize = 3;
/// Workers per process: together far more than the limit.
const WORKERS: usize = 8;

/// Each execution leaves a row with its start and end by the database's clock.
#[job(queue = "render", display = "Render {n}")]
async fn render(State(pool): State<PgPool>, n: u32, millis: u64) -> Result<(), sqlx::Error> {
    let _ = n;
    execution(&pool, "render", millis).await
}

/// A worker process: the same global limit as every other, until its parent is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child() {
    if process::role().as_deref() != Some("limited") {
        return;
    }
    let (jobs, pool) = child_connections(4).await;
    let server = JobServer::builder(jobs)
        .state(pool)
        .worker_count(WORKERS)
        .global_queue_limit("render", LIMIT)
        .poll_interval(Duration::from_millis(200))
        // Leases that a loaded machine's slow heartbeats do not let run out.
        .server_timeout(Duration::from_secs(10));
    process::serve_until_parent_gone(server).await;
}

async fn limited_drain(jobs_count: u32, millis: u64) -> Figures {
    let db = TestDb::new(Backend::Postgres).await;
    let jobs = Jobs::connect(&db.url).await.unwrap();
    create_executions(&PgPool::connect(&db.url).await.unwrap()).await;
    jobs.enqueue_many((0..jobs_count).map(|n| Render { n, millis }))
        .await
        .unwrap();
    let budget = Duration::from_millis(millis) * jobs_count / 2 + Duration::from_secs(60);
    drain(
        &jobs,
        module_path!(),
        "limited",
        &db.url,
        PROCESSES,
        u64::from(jobs_count),
        budget,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_never_run_more_of_a_queue_than_its_global_limit() {
    let figures = limited_drain(60, 100).await;
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
    let figures = limited_drain(500, 200).await;
    assert_eq!(figures.most, LIMIT as i64, "the most running at once");
    println!(
        "500 jobs of 200 ms, limit {LIMIT} over {PROCESSES} processes: at most {} at once, \
         {:.2} on average, in {:.1?}",
        figures.most, figures.mean, figures.took
    );
}
