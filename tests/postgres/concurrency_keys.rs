//! Issue 17's acceptance of partitioned limits: three worker processes on one
//! PostgreSQL database drain 50 jobs of each of 10 tenants, limited to one running job
//! per tenant. Each execution records its start and end by the database's clock: never
//! two of one tenant at once, while the tenants run side by side (the mean number
//! running shows how many).

#![cfg(feature = "postgres")]

use std::time::Duration;

use crate::drain::{child_connections, create_executions, drain, execution};
use crate::support::process;
use crate::support::{Backend, TestDb};
use jobs::prelude::*;
use jobs::{JobServer, Jobs};
use sqlx::PgPool;

const TENANTS: u32 = 10;
const EACH: u32 = 50;
const PROCESSES: usize = 3;
/// Workers per process: together more than the tenants.
const WORKERS: usize = 8;

/// A tenant's sync: one at a time per tenant.
#[job(concurrency_key = "tenant-{tenant}", display = "Sync {tenant}/{n}")]
async fn sync_tenant(
    State(pool): State<PgPool>,
    tenant: u32,
    n: u32,
    millis: u64,
) -> Result<(), sqlx::Error> {
    let _ = n;
    execution(&pool, &format!("tenant-{tenant}"), millis).await
}

/// A worker process, until its parent is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child() {
    if process::role().as_deref() != Some("tenants") {
        return;
    }
    let (jobs, pool) = child_connections(4).await;
    // Leases of a few seconds: three processes on a busy host may pause longer than
    // the 400 ms after which the default lease of this poll interval fences a server
    // (its stopped attempts then run again, which this test counts).
    let server = JobServer::builder(jobs)
        .state(pool)
        .worker_count(WORKERS)
        .poll_interval(Duration::from_millis(200))
        .server_timeout(Duration::from_secs(5));
    process::serve_until_parent_gone(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_never_run_two_jobs_of_one_tenant_at_once() {
    const MILLIS: u64 = 20;
    let db = TestDb::new(Backend::Postgres).await;
    let jobs = Jobs::connect(&db.url).await.unwrap();
    create_executions(&PgPool::connect(&db.url).await.unwrap()).await;
    // Tenant by tenant: each tenant's waiting jobs follow the first tenant's in claim
    // order, so the claims must pass over the jobs of tenants already running.
    jobs.enqueue_many((0..TENANTS).flat_map(|tenant| {
        (0..EACH).map(move |n| SyncTenant {
            tenant,
            n,
            millis: MILLIS,
        })
    }))
    .await
    .unwrap();
    let total = u64::from(TENANTS * EACH);
    let figures = drain(
        &jobs,
        module_path!(),
        "tenants",
        &db.url,
        PROCESSES,
        total,
        Duration::from_secs(120),
    )
    .await;
    println!(
        "{TENANTS} tenants x {EACH} jobs of {MILLIS} ms, one at a time per tenant, over \
         {PROCESSES} processes: at most {} of one tenant at once, {} in all, {:.2} on \
         average, in {:.1?}",
        figures.most_of_a_key, figures.most, figures.mean, figures.took
    );
    assert_eq!(figures.most_of_a_key, 1, "the most of one tenant at once");
    assert!(
        figures.most > 1,
        "the tenants never ran side by side: at most {} at once",
        figures.most
    );
}
