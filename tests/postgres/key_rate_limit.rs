//! Rates per concurrency key across processes: three worker processes on one
//! PostgreSQL database drain 3 tenants × 30 no-op jobs keyed by tenant and rated at 10
//! per second per tenant. No closed second holds more than 10 starts of a tenant as the
//! claims recorded them; each tenant's starts spread over at least two of its windows
//! while the tenants run side by side; every job succeeded at its first attempt.

#![cfg(feature = "postgres")]

use std::time::Duration;

use crate::drain::{child_connections, create_executions, drain, execution, first_attempts};
use crate::support::process;
use crate::support::{Backend, TestDb};
use jobs::prelude::*;
use jobs::{JobServer, Jobs};
use sqlx::PgPool;

const TENANTS: u32 = 3;
const EACH: u32 = 30;
const RATE: i64 = 10;
const PROCESSES: usize = 3;
/// Workers per process: together more than a tenant's rate lets start in a second.
const WORKERS: usize = 8;

#[job(concurrency_key = "tenant-{tenant}", rate = "10/1s")]
async fn call_tenant(State(pool): State<PgPool>, tenant: u32, n: u32) -> Result<(), sqlx::Error> {
    let _ = n;
    execution(&pool, &format!("tenant-{tenant}"), 0).await
}

/// A worker process, until its parent is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child() {
    if process::role().as_deref() != Some("key-rated") {
        return;
    }
    let (jobs, pool) = child_connections(u32::try_from(WORKERS).unwrap()).await;
    let server = JobServer::builder(jobs)
        .state(pool)
        .worker_count(WORKERS)
        .poll_interval(Duration::from_millis(200))
        // Leases that a loaded machine's slow heartbeats do not let run out.
        .server_timeout(Duration::from_secs(10));
    process::serve_until_parent_gone(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_start_no_more_of_a_key_than_its_rate() {
    let db = TestDb::new(Backend::Postgres).await;
    let jobs = Jobs::connect(&db.url).await.unwrap();
    let pool = PgPool::connect(&db.url).await.unwrap();
    create_executions(&pool).await;
    for statement in [
        "CREATE TABLE rate_claim (scope text NOT NULL, at timestamptz NOT NULL, \
             starts integer NOT NULL)",
        "CREATE FUNCTION copy_rate_claim() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN INSERT INTO rate_claim VALUES (NEW.scope, NEW.started_at, NEW.starts); \
         RETURN NEW; END $$",
        "CREATE TRIGGER copy_rate_claim AFTER INSERT ON jobs_rate_start \
         FOR EACH ROW EXECUTE FUNCTION copy_rate_claim()",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    jobs.enqueue_many(
        (0..EACH).flat_map(|n| (0..TENANTS).map(move |tenant| CallTenant { tenant, n })),
    )
    .await
    .unwrap();
    let total = u64::from(TENANTS * EACH);
    let figures = drain(
        &jobs,
        module_path!(),
        "key-rated",
        &db.url,
        PROCESSES,
        total,
        Duration::from_secs(60),
    )
    .await;
    // Per tenant, every closed window [s, s + 1 s] from a start s: the claims' record.
    let (claimed_most,): (i64,) = sqlx::query_as(
        "SELECT max((SELECT sum(starts) FROM rate_claim AS other \
             WHERE other.scope = first.scope \
                 AND other.at BETWEEN first.at AND first.at + interval '1 second'))::bigint \
         FROM rate_claim AS first",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    // The same by the jobs' own records, and each tenant's first start to its last.
    let (started_most, shortest, longest): (i64, f64, f64) = sqlx::query_as(
        "SELECT (SELECT max((SELECT count(*) FROM execution AS other \
                 WHERE other.key = first.key AND other.started BETWEEN first.started \
                     AND first.started + interval '1 second')) \
                 FROM execution AS first)::bigint, \
             min(span)::float8, max(span)::float8 \
         FROM (SELECT extract(epoch FROM max(started) - min(started)) AS span \
             FROM execution GROUP BY key) AS tenants",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let (succeeded, charged) = first_attempts(&pool).await;
    println!(
        "{TENANTS} tenants × {EACH} jobs at {RATE}/1s per tenant over {PROCESSES} processes: \
         at most {claimed_most} claimed and {started_most} started (by the jobs' own \
         records) of a tenant in a second, {shortest:.2} to {longest:.2} s from a tenant's \
         first start to its last, up to {} running at once, drained in {:.1?}",
        figures.most, figures.took
    );
    assert!(
        claimed_most <= RATE,
        "{claimed_most} starts of a tenant claimed within one second"
    );
    assert_eq!(
        (succeeded, charged),
        (i64::try_from(total).unwrap(), 0),
        "every job succeeded at its first attempt"
    );
    // Thirty starts at ten per window of 1.1 s: the last begins two windows after the
    // first at the earliest.
    assert!(
        shortest >= 2.2,
        "a tenant's starts spread over {shortest:.2} s"
    );
}
