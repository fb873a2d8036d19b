//! Three worker processes on one PostgreSQL database drain 5,000 jobs while one of them
//! is killed with SIGKILL: every job ends `Succeeded`, no job's executions overlap in
//! time, the jobs the dead process held are rescued after the server timeout (never
//! failed), and none is lost.

#![cfg(feature = "postgres")]

use std::time::Duration;

use crate::support::process::{self, Child};
use crate::support::{Backend, TestDb, wait_until};
use chrono::{DateTime, Utc};
use jobs::prelude::*;
use jobs::{JobServer, Jobs};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

const JOBS: u32 = 5_000;
const PROCESSES: usize = 3;
const WORKERS: usize = 16;
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Long enough that a live process keeps its leases on a loaded machine (it stops its
/// own attempts after half of it without a renewal, and the check below wants only the
/// killed process to leave executions unfinished); short enough that the killed
/// process's jobs are rescued well within the test's budget.
const SERVER_TIMEOUT: Duration = Duration::from_secs(3);

/// Given to each child: the name it records its executions under.
const NAME_VAR: &str = "JOBS_TEST_PROCESS";

/// Each execution leaves a row: which job, which process, when it started and ended (by
/// the database's clock, which every process shares).
#[job(display = "Tracked {n}")]
async fn tracked(State(pool): State<PgPool>, ctx: JobContext, n: u32) -> Result<(), sqlx::Error> {
    let process = std::env::var(NAME_VAR).unwrap_or_default();
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO execution (job_id, attempt, process, started) \
         VALUES ($1, $2, $3, clock_timestamp()) RETURNING seq",
    )
    .bind(ctx.id().as_uuid())
    .bind(i32::try_from(ctx.attempt()).unwrap())
    .bind(process)
    .fetch_one(&pool)
    .await?;
    tokio::time::sleep(Duration::from_millis(10 + u64::from(n % 20))).await;
    sqlx::query("UPDATE execution SET ended = clock_timestamp() WHERE seq = $1")
        .bind(seq)
        .execute(&pool)
        .await?;
    Ok(())
}

/// A worker process: runs jobs until its parent closes its stdin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child() {
    if process::role().as_deref() != Some("worker") {
        return;
    }
    let url = process::database_url();
    let jobs = Jobs::connect(&url).await.expect("child connects");
    let pool = PgPoolOptions::new()
        .max_connections(6)
        .connect(&url)
        .await
        .expect("job pool");
    let server = JobServer::builder(jobs)
        .state(pool)
        .worker_count(WORKERS)
        .poll_interval(POLL_INTERVAL)
        .server_timeout(SERVER_TIMEOUT);
    process::serve_until_parent_gone(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_drain_five_thousand_jobs_while_one_is_killed() {
    let started = tokio::time::Instant::now();
    let db = TestDb::new(Backend::Postgres).await;
    let jobs = Jobs::connect(&db.url).await.unwrap();
    let pool = PgPool::connect(&db.url).await.unwrap();
    sqlx::query(
        "CREATE TABLE execution (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            job_id uuid NOT NULL,
            attempt integer NOT NULL,
            process text NOT NULL,
            started timestamptz NOT NULL,
            ended timestamptz)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let ids = jobs
        .enqueue_many((0..JOBS).map(|n| Tracked { n }))
        .await
        .unwrap();
    let ids: Vec<_> = ids.iter().map(|id| id.as_uuid()).collect();

    let names: Vec<String> = (0..PROCESSES).map(|i| format!("worker-{i}")).collect();
    let mut children: Vec<Child> = names
        .iter()
        .map(|name| Child::spawn(module_path!(), "worker", &db.url, &[(NAME_VAR, name)]))
        .collect();

    // Kill the first worker well into the run, while it is busy.
    let victim = &names[0];
    wait_until(&format!("{victim} has run 300 jobs"), || async {
        executions_by(&pool, victim).await >= 300
    })
    .await;
    let victim_server: String = sqlx::query_scalar("SELECT id FROM jobs_server WHERE pid = $1")
        .bind(i64::from(children[0].pid()))
        .fetch_one(&pool)
        .await
        .unwrap();
    children[0].kill();
    let killed_at: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let done_at_kill = succeeded(&pool).await;
    assert!(
        done_at_kill < i64::from(JOBS),
        "every job was done before the kill; the test proves nothing"
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(50);
    while succeeded(&pool).await < i64::from(JOBS) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "jobs not all done in time: {:?}",
            jobs.count_by_state().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for child in children.drain(1..) {
        child.stop(Duration::from_secs(20)).await;
    }

    // Every job ends Succeeded; none is lost.
    assert_eq!(
        jobs.count_by_state().await.unwrap(),
        [(JobState::Succeeded, u64::from(JOBS))]
    );
    let found: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM jobs_job WHERE id = ANY($1) AND state = 'Succeeded'",
    )
    .bind(&ids)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(found, i64::from(JOBS));
    let executed: i64 = sqlx::query_scalar("SELECT count(DISTINCT job_id) FROM execution")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(executed, i64::from(JOBS), "every job ran");

    // Only the killed process left executions unfinished.
    let unfinished: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT process FROM execution WHERE ended IS NULL")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(
        unfinished.iter().all(|process| process == victim),
        "{unfinished:?}"
    );

    // No job's executions overlap: each starts after the previous one ended (an
    // execution cut short by the kill ended at the kill, at the latest).
    let overlaps: Vec<(uuid::Uuid, String, String)> = sqlx::query_as(
        "SELECT job_id, previous_process, process FROM ( \
             SELECT job_id, process, started, \
                 lag(COALESCE(ended, $1)) OVER (PARTITION BY job_id ORDER BY started) \
                     AS previous_ended, \
                 lag(process) OVER (PARTITION BY job_id ORDER BY started) AS previous_process \
             FROM execution) AS e \
         WHERE previous_ended > started",
    )
    .bind(killed_at)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(overlaps.is_empty(), "overlapping executions: {overlaps:?}");

    // The jobs the killed process held (claimed, never finished by it) were rescued by
    // another process after the server timeout and run again: those it had started as a
    // re-run (their attempt counted, never failed), those it had only claimed ahead put
    // back uncharged.
    let orphaned = format!(
        "orphaned: server {victim_server} stopped renewing its lease (the attempt may have \
         finished; what a crash loses runs again)"
    );
    let never_started = format!(
        "put back: it never started (claimed ahead by server {victim_server}, which stopped \
         renewing its lease)"
    );
    let held: Vec<(uuid::Uuid, i32, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT claim.job_id, claim.attempt, ( \
             SELECT min(rescue.at) FROM jobs_event AS rescue \
             WHERE rescue.job_id = claim.job_id AND rescue.seq > claim.seq \
                 AND rescue.message IN ($2, $3)) \
         FROM jobs_event AS claim \
         WHERE claim.server = $1 AND claim.state = 'Processing' AND NOT EXISTS ( \
             SELECT 1 FROM jobs_event AS finish \
             WHERE finish.job_id = claim.job_id AND finish.seq > claim.seq \
                 AND finish.server = $1 AND finish.state <> 'Processing' \
                 AND finish.message IS DISTINCT FROM $2 \
                 AND finish.message IS DISTINCT FROM $3)",
    )
    .bind(&victim_server)
    .bind(&orphaned)
    .bind(&never_started)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(!held.is_empty(), "the killed process held no jobs");
    let failed: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs_event WHERE state = 'Failed'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(failed, 0, "a rescue never fails a job");
    let mut delays = Vec::with_capacity(held.len());
    for (job, attempt, rescued_at) in &held {
        let rescued_at =
            rescued_at.unwrap_or_else(|| panic!("job {job} (attempt {attempt}) not rescued"));
        let delay = (rescued_at - killed_at).to_std().unwrap_or_else(|_| {
            panic!("job {job} rescued at {rescued_at}, before the kill at {killed_at}")
        });
        assert!(
            delay >= SERVER_TIMEOUT - POLL_INTERVAL * 2,
            "job {job} rescued {delay:?} after the kill, before the server timeout"
        );
        delays.push(delay);
        let reruns: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs_event WHERE job_id = $1 AND at >= $2 \
                 AND state = 'Processing' AND server <> $3",
        )
        .bind(job)
        .bind(rescued_at)
        .bind(&victim_server)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(reruns >= 1, "job {job} was not run again by a live process");
    }
    delays.sort();

    let per_process: Vec<(String, i64)> =
        sqlx::query_as("SELECT process, count(*) FROM execution GROUP BY process ORDER BY process")
            .fetch_all(&pool)
            .await
            .unwrap();
    let twice: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT job_id FROM execution GROUP BY job_id \
             HAVING count(*) > 1) AS repeated",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    println!(
        "{JOBS} jobs on {PROCESSES} processes in {:.1?}; killed {victim} after {done_at_kill} \
         jobs were done; it held {} jobs, rescued {:?}..{:?} after the kill; executions per \
         process {per_process:?}; {twice} jobs ran more than once",
        started.elapsed(),
        held.len(),
        delays.first().unwrap(),
        delays.last().unwrap(),
    );
}

async fn executions_by(pool: &PgPool, process: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM execution WHERE process = $1")
        .bind(process)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn succeeded(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs_job WHERE state = 'Succeeded'")
        .fetch_one(pool)
        .await
        .unwrap()
}
