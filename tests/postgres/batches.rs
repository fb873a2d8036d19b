//! The acceptance of batches: 1,000 members run by three worker processes on one
//! PostgreSQL database. The fan-in runs exactly once, after the last member, and reads
//! 1,000 results; a failed member runs the on-failure job and keeps the fan-in waiting
//! until it is requeued and succeeds.

#![cfg(feature = "postgres")]

use std::time::{Duration, Instant};

use crate::support::process::{self, Child};
use crate::support::{Backend, TestDb};
use jobs::prelude::*;
use jobs::{BatchId, JobServer, Jobs};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

const PROCESSES: usize = 3;
const WORKERS: usize = 8;
const MEMBERS: u64 = 1000;

/// A member: returns `n`; fails (for good) while `fails` and the table `allowed` is
/// empty.
#[job(retries = 0)]
async fn member(State(pool): State<PgPool>, n: u64, fails: bool) -> Result<u64, String> {
    if fails {
        let allowed: i64 = sqlx::query_scalar("SELECT count(*) FROM allowed")
            .fetch_one(&pool)
            .await
            .map_err(|error| error.to_string())?;
        if allowed == 0 {
            return Err(format!("member {n} failed"));
        }
    }
    Ok(n)
}

/// The fan-in: records each run with the number of results it read and their sum.
#[job(retries = 0)]
async fn fan_in(
    State(pool): State<PgPool>,
    State(jobs): State<Jobs>,
    batch: BatchId,
) -> Result<(), String> {
    let results = jobs
        .batch_results::<Member>(batch)
        .await
        .map_err(|error| error.to_string())?;
    let sum: u64 = results.iter().map(|(_, n)| n).sum();
    sqlx::query(
        "INSERT INTO fan_in_run (batch, results, sum, at) VALUES ($1, $2, $3, clock_timestamp())",
    )
    .bind(batch.as_uuid())
    .bind(i64::try_from(results.len()).unwrap())
    .bind(i64::try_from(sum).unwrap())
    .execute(&pool)
    .await
    .map_err(|error| error.to_string())?;
    Ok(())
}

/// The on-failure job: records each run.
#[job(retries = 0)]
async fn batch_failed(State(pool): State<PgPool>, batch: BatchId) -> Result<(), String> {
    sqlx::query("INSERT INTO failure_run (batch) VALUES ($1)")
        .bind(batch.as_uuid())
        .execute(&pool)
        .await
        .map_err(|error| error.to_string())?;
    Ok(())
}

/// A worker process, until its parent is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child() {
    if process::role().as_deref() != Some("batch-worker") {
        return;
    }
    let url = process::database_url();
    let jobs = Jobs::connect(&url).await.expect("child connects");
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .expect("job pool");
    let server = JobServer::builder(jobs.clone())
        .state(pool)
        .state(jobs)
        .worker_count(WORKERS)
        .poll_interval(Duration::from_millis(200))
        // Leases that a loaded machine's slow heartbeats do not let run out.
        .server_timeout(Duration::from_secs(10));
    process::serve_until_parent_gone(server).await;
}

/// Waits until job `id` is in `state`, for at most a minute.
async fn wait_for(jobs: &Jobs, id: JobId, state: JobState) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while jobs.get(id).await.unwrap().state != state {
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {id} is not {state} within a minute: {:?}",
            jobs.get(id).await.unwrap().state
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The fan-in's runs of `batch`: (results read, their sum).
async fn fan_in_runs(pool: &PgPool, batch: BatchId) -> Vec<(i64, i64)> {
    sqlx::query_as("SELECT results, sum FROM fan_in_run WHERE batch = $1")
        .bind(batch.as_uuid())
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Whether the fan-in of `batch` started after every member's end was recorded.
async fn started_after_the_last_member(pool: &PgPool, fan_in: JobId, batch: BatchId) -> bool {
    sqlx::query_scalar(
        "SELECT (SELECT min(at) FROM jobs_event WHERE job_id = $1 AND state = 'Processing') \
             >= (SELECT max(event.at) FROM jobs_event AS event \
                 JOIN jobs_job AS job ON job.id = event.job_id \
                 WHERE job.batch_id = $2 AND event.state IN ('Succeeded', 'Failed'))",
    )
    .bind(fan_in.as_uuid())
    .bind(batch.as_uuid())
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_run_a_batch_of_a_thousand_and_its_fan_in_once() {
    let db = TestDb::new(Backend::Postgres).await;
    let jobs = Jobs::connect(&db.url).await.unwrap();
    let pool = PgPool::connect(&db.url).await.unwrap();
    for table in [
        "CREATE TABLE fan_in_run (batch uuid, results bigint, sum bigint, at timestamptz)",
        "CREATE TABLE failure_run (batch uuid)",
        "CREATE TABLE allowed (yes bool)",
    ] {
        sqlx::query(table).execute(&pool).await.unwrap();
    }
    let children: Vec<Child> = (0..PROCESSES)
        .map(|_| Child::spawn(module_path!(), "batch-worker", &db.url, &[]))
        .collect();
    let expected_sum = i64::try_from(MEMBERS * (MEMBERS + 1) / 2).unwrap();

    // A batch whose members all succeed.
    let started = Instant::now();
    let batch = jobs.batch().label("clean");
    let clean = batch.id();
    batch
        .add_many((1..=MEMBERS).map(|n| Member { n, fails: false }))
        .then(FanIn { batch: clean })
        .on_failure(BatchFailed { batch: clean })
        .await
        .unwrap();
    let then_id = jobs.batch_status(clean).await.unwrap().then_id.unwrap();
    wait_for(&jobs, then_id, JobState::Succeeded).await;
    let clean_took = started.elapsed();
    assert_eq!(fan_in_runs(&pool, clean).await, [(1000, expected_sum)]);
    assert!(started_after_the_last_member(&pool, then_id, clean).await);
    let status = jobs.batch_status(clean).await.unwrap();
    assert_eq!((status.succeeded, status.done()), (MEMBERS, MEMBERS));

    // A batch with one member that fails until it is allowed, then requeued.
    let started = Instant::now();
    let batch = jobs.batch().label("one failure");
    let failing = batch.id();
    batch
        .add_many((1..=MEMBERS).map(|n| Member { n, fails: n == 500 }))
        .then(FanIn { batch: failing })
        .on_failure(BatchFailed { batch: failing })
        .await
        .unwrap();
    let status = jobs.batch_status(failing).await.unwrap();
    let (then_id, on_failure_id) = (status.then_id.unwrap(), status.on_failure_id.unwrap());
    wait_for(&jobs, on_failure_id, JobState::Succeeded).await;
    let failed_took = started.elapsed();
    let status = jobs.batch_status(failing).await.unwrap();
    assert_eq!((status.succeeded, status.failed), (MEMBERS - 1, 1));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(jobs.get(then_id).await.unwrap().state, JobState::Awaiting);
    assert!(fan_in_runs(&pool, failing).await.is_empty());

    sqlx::query("INSERT INTO allowed VALUES (true)")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(jobs.batch_requeue(failing).await.unwrap(), 1);
    wait_for(&jobs, then_id, JobState::Succeeded).await;
    for child in children {
        child.stop(Duration::from_secs(20)).await;
    }
    assert_eq!(fan_in_runs(&pool, failing).await, [(1000, expected_sum)]);
    assert!(started_after_the_last_member(&pool, then_id, failing).await);
    let failure_runs: i64 = sqlx::query_scalar("SELECT count(*) FROM failure_run")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        failure_runs, 1,
        "the on-failure job of the failing batch, once"
    );
    println!(
        "{MEMBERS} members over {PROCESSES} processes of {WORKERS} workers: fan-in done \
         {clean_took:.1?} after the enqueue; with one failed member, its on-failure job \
         done {failed_took:.1?} after it"
    );
}
