//! A rolling deploy in real processes on one database: v1 (a build that registers only
//! `rolling.report`, release 1.0.0) runs; v2 (it registers `rolling.invoice` too,
//! release 2.0.0) enqueues an invoice, which waits, shown as waiting for a server,
//! until a v2 server starts and runs it once; then a v1 node restarts and leaves the
//! recurring schedules as v2 registered them.

use std::time::Duration;

use crate::support::process::{self, Child};
use crate::support::{Backend, TestDb, wait_for_state, wait_until};
use jobs::prelude::*;
use jobs::{JobServer, Jobs};
use sqlx::PgPool;

/// Long enough for a loaded machine: the processes' leases are not what is tested.
const SERVER_TIMEOUT: Duration = Duration::from_secs(10);

#[job(name = "rolling.report")]
async fn report(State(pool): State<PgPool>, ctx: JobContext) -> Result<(), sqlx::Error> {
    ran(&pool, "report", ctx.id()).await
}

#[job(name = "rolling.invoice")]
async fn invoice(State(pool): State<PgPool>, ctx: JobContext) -> Result<(), sqlx::Error> {
    ran(&pool, "invoice", ctx.id()).await
}

/// Only v1 runs it: a ping that v1 answered says its start, registration included, is
/// over.
#[job(name = "rolling.ping")]
async fn ping() {}

/// Declared by both builds; its tick (00:00 on 29 February) never comes in a test.
#[recurring(id = "rolling-leap-day", cron = "0 0 29 2 *")]
async fn leap_day() {}

async fn ran(pool: &PgPool, name: &str, id: jobs::JobId) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO ran (name, job, pid) VALUES ($1, $2, $3)")
        .bind(name)
        .bind(id.to_string())
        .bind(i32::try_from(std::process::id()).unwrap_or(i32::MAX))
        .execute(pool)
        .await?;
    Ok(())
}

/// A node of v1 or v2, as its role says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child() {
    let (names, release): (&[&str], &str) = match process::role().as_deref() {
        Some("v1") => (&["rolling.report", "rolling.ping"], "1.0.0"),
        Some("v2") => (&["rolling.report", "rolling.invoice"], "2.0.0"),
        _ => return,
    };
    let url = process::database_url();
    let jobs = Jobs::connect(&url).await.expect("child connects");
    let pool = PgPool::connect(&url).await.expect("job pool");
    let server = JobServer::builder(jobs)
        .state(pool)
        .only_jobs(names.iter().copied())
        .application("billing")
        .release(release)
        .poll_interval(Duration::from_millis(200))
        .server_timeout(SERVER_TIMEOUT);
    process::serve_until_parent_gone(server).await;
}

async fn stored_release(pool: &PgPool) -> Option<String> {
    sqlx::query_scalar("SELECT release FROM jobs_application WHERE name = 'billing'")
        .fetch_optional(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_only_the_new_build_runs_waits_for_it_and_an_old_restart_leaves_its_schedules() {
    let db = TestDb::new(Backend::Postgres).await;
    // The enqueuing side of v2 (an API node): no server.
    let jobs = Jobs::connect(&db.url).await.unwrap();
    let pool = PgPool::connect(&db.url).await.unwrap();
    sqlx::query("CREATE TABLE ran (name text NOT NULL, job text NOT NULL, pid int NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let v1 = Child::spawn(module_path!(), "v1", &db.url, &[]);
    wait_until("v1 registered its schedules", || async {
        stored_release(&pool).await.as_deref() == Some("1.0.0")
    })
    .await;

    let invoice = jobs.enqueue(Invoice {}).await.unwrap();
    let report = jobs.enqueue(Report {}).await.unwrap();
    wait_for_state(&jobs, report, JobState::Succeeded).await;
    let waiting = jobs.get(invoice).await.unwrap();
    assert_eq!((waiting.state, waiting.attempt), (JobState::Enqueued, 0));
    assert!(waiting.waiting_for_server, "shown as waiting for a server");

    let v2 = Child::spawn(module_path!(), "v2", &db.url, &[]);
    let ran = wait_for_state(&jobs, invoice, JobState::Succeeded).await;
    assert_eq!(ran.attempt, 1);
    let runs: Vec<(String, i32)> = sqlx::query_as("SELECT name, pid FROM ran WHERE job = $1")
        .bind(invoice.to_string())
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        runs,
        [("invoice".to_owned(), i32::try_from(v2.pid()).unwrap())]
    );
    wait_until("v2 registered its schedules", || async {
        stored_release(&pool).await.as_deref() == Some("2.0.0")
    })
    .await;
    let registered = jobs.recurring().get("rolling-leap-day").await.unwrap();

    // A v1 node restarts mid-deploy: it starts, registers nothing, and runs its jobs.
    v1.stop(Duration::from_secs(20)).await;
    let again = Child::spawn(module_path!(), "v1", &db.url, &[]);
    let ping = jobs.enqueue(Ping {}).await.unwrap();
    wait_for_state(&jobs, ping, JobState::Succeeded).await;
    let after = jobs.recurring().get("rolling-leap-day").await.unwrap();
    assert_eq!(
        after.updated_at, registered.updated_at,
        "not registered again"
    );
    assert!(after.enabled);
    assert_eq!(stored_release(&pool).await.as_deref(), Some("2.0.0"));
    again.stop(Duration::from_secs(20)).await;
    v2.stop(Duration::from_secs(20)).await;
    pool.close().await;
}
