//! `postgres_durable_commits`: claims and results committed durably run jobs as the
//! asynchronous ones do, on a URL-configured client and on the application's pool.

#![cfg(feature = "postgres")]

use crate::support::{Backend, Probe, TestDb, test_server, wait_for_state};
use jobs::prelude::*;
use jobs::{ConnectOptions, JobState, Jobs};

#[job]
async fn doubled(
    State(probe): State<Probe>,
    ctx: JobContext,
    n: u32,
) -> Result<u32, std::convert::Infallible> {
    let _run = probe.start(ctx.id());
    Ok(n * 2)
}

async fn runs_jobs(jobs: Jobs) {
    let probe = Probe::new();
    let server = test_server(&jobs, &probe).start().await.unwrap();
    let ids = jobs
        .enqueue_many((0..20).map(|n| Doubled { n }))
        .await
        .unwrap();
    for (n, id) in ids.iter().enumerate() {
        wait_for_state(&jobs, *id, JobState::Succeeded).await;
        assert_eq!(
            jobs.result::<Doubled>(*id).await.unwrap(),
            Some(n as u32 * 2)
        );
        assert_eq!(probe.runs(*id), 1);
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_commits_run_jobs_from_a_url() {
    let db = TestDb::new(Backend::Postgres).await;
    let jobs = Jobs::builder()
        .url(&db.url)
        .connect_options(ConnectOptions::default().postgres_durable_commits(true))
        .connect()
        .await
        .unwrap();
    runs_jobs(jobs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_commits_run_jobs_on_the_apps_pool() {
    let db = TestDb::new(Backend::Postgres).await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let jobs = Jobs::builder()
        .postgres_pool(pool)
        .connect_options(ConnectOptions::default().postgres_durable_commits(true))
        .connect()
        .await
        .unwrap();
    runs_jobs(jobs).await;
}
