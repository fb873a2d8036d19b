//! Rates per concurrency key: `#[job(concurrency_key = "…", rate = "2/1m")]` starts at
//! most two jobs of each key in any minute, across servers; the jobs over a key's rate
//! stay `Enqueued`, hold no worker and are charged no attempt, and start when the key's
//! window frees; one key's window never holds back another key.

use std::time::Duration;

use crate::support::{
    Backend, LONG_LEASE, Probe, TestDb, first_attempts, setup, test_server, until_succeeded,
    wait_for_state, wait_until,
};
use jobs::prelude::*;
use jobs::{JobId, JobServer, Jobs, ManualClock};

backend_tests!(
    a_key_rate_starts_its_count_per_period_of_each_key_and_the_rest_wait_uncharged,
    a_key_rate_holds_across_two_servers_claiming_at_once,
    a_key_rate_without_a_concurrency_runs_its_starts_at_once,
    recurring_runs_carry_their_key_rate,
);

#[job(
    concurrency_key = "tenant-{tenant}",
    rate = "2/1m",
    display = "Call {tenant}/{n}"
)]
async fn call_tenant_api(State(probe): State<Probe>, tenant: u32, n: u32) {
    probe.note(format!("call {tenant}/{n}"));
}

/// As `call_tenant_api`, held at the probe's gate while it runs.
#[job(concurrency_key = "account-{account}", rate = "2/1m")]
async fn export_account(State(probe): State<Probe>, account: u32, n: u32) {
    let _ = (account, n);
    let _inside = probe.inside("exports");
    probe.gate.acquire().await.expect("gate open").forget();
}

#[job(display = "Tick {n}")]
async fn tick(n: u32) {
    let _ = n;
}

/// A server whose leases outlast the minutes the tests move the clock by.
async fn server(jobs: &Jobs, probe: &Probe) -> JobServer {
    test_server(jobs, probe)
        .worker_count(8)
        .server_timeout(LONG_LEASE)
        .start()
        .await
        .expect("server starts")
}

/// Enqueues a job without a key and waits for it to succeed: the server's claims ran
/// since, so what still waits was passed by.
async fn after_a_claim(jobs: &Jobs, n: u32) {
    let marker = jobs.enqueue(Tick { n }).await.unwrap();
    wait_for_state(jobs, marker, JobState::Succeeded).await;
}

/// Enqueues `each` calls of each tenant in `tenants`, returning their ids by tenant.
async fn enqueue_calls(jobs: &Jobs, tenants: std::ops::Range<u32>, each: u32) -> Vec<Vec<JobId>> {
    let mut ids = Vec::new();
    for tenant in tenants {
        let of_tenant = jobs
            .enqueue_many((0..each).map(|n| CallTenantApi { tenant, n }))
            .await
            .unwrap();
        ids.push(of_tenant);
    }
    ids
}

/// Asserts each tenant's calls are `(succeeded, waiting uncharged, other)`.
async fn assert_each(jobs: &Jobs, tenants: &[Vec<JobId>], expected: (usize, usize, usize)) {
    for (tenant, ids) in tenants.iter().enumerate() {
        assert_eq!(first_attempts(jobs, ids).await, expected, "tenant {tenant}");
    }
}

async fn a_key_rate_starts_its_count_per_period_of_each_key_and_the_rest_wait_uncharged(
    backend: Backend,
) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let tenants = enqueue_calls(&jobs, 0..3, 5).await;
    let all: Vec<JobId> = tenants.concat();
    let server = server(&jobs, &probe).await;
    until_succeeded(&jobs, &all, 6).await;
    after_a_claim(&jobs, 0).await;
    assert_each(&jobs, &tenants, (2, 3, 0)).await;
    // Another tenant's window is its own: its calls start while the others wait.
    let newcomer = enqueue_calls(&jobs, 3..4, 2).await;
    until_succeeded(&jobs, &newcomer[0], 2).await;
    after_a_claim(&jobs, 1).await;
    assert_each(&jobs, &tenants, (2, 3, 0)).await;
    // Within the window nothing more starts.
    clock.advance(Duration::from_secs(59));
    after_a_claim(&jobs, 2).await;
    assert_each(&jobs, &tenants, (2, 3, 0)).await;
    // Past it, the next two of each.
    clock.advance(Duration::from_secs(2));
    until_succeeded(&jobs, &all, 12).await;
    after_a_claim(&jobs, 3).await;
    assert_each(&jobs, &tenants, (4, 1, 0)).await;
    clock.advance(Duration::from_secs(61));
    until_succeeded(&jobs, &all, 15).await;
    assert_each(&jobs, &tenants, (5, 0, 0)).await;
    server.shutdown().await;
}

/// A server of its own pool on the test's database, as another replica has.
async fn replica(db: &TestDb, clock: &ManualClock, probe: &Probe) -> JobServer {
    server(&db.jobs(clock).await, probe).await
}

async fn a_key_rate_holds_across_two_servers_claiming_at_once(backend: Backend) {
    let (db, clock, jobs, probe) = setup(backend).await;
    let tenants = enqueue_calls(&jobs, 0..2, 6).await;
    let all: Vec<JobId> = tenants.concat();
    // Sixteen free workers between them and twelve jobs: without the rate every job
    // would start at once.
    let (one, two) = tokio::join!(replica(&db, &clock, &probe), replica(&db, &clock, &probe));
    for round in 1..=3 {
        until_succeeded(&jobs, &all, 4 * round).await;
        after_a_claim(&jobs, u32::try_from(round).unwrap()).await;
        assert_each(&jobs, &tenants, (2 * round, 6 - 2 * round, 0)).await;
        clock.advance(Duration::from_secs(61));
    }
    one.shutdown().await;
    two.shutdown().await;
}

async fn a_key_rate_without_a_concurrency_runs_its_starts_at_once(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let ids = jobs
        .enqueue_many((0..3).map(|n| ExportAccount { account: 1, n }))
        .await
        .unwrap();
    let server = server(&jobs, &probe).await;
    wait_until("two exports of the account run", || async {
        probe.running_in("exports") == 2
    })
    .await;
    after_a_claim(&jobs, 0).await;
    assert_eq!(
        probe.running_in("exports"),
        2,
        "the third waits for the window"
    );
    let mut states = Vec::new();
    for &id in &ids {
        let info = jobs.get(id).await.unwrap();
        states.push((info.state, info.attempt));
    }
    states.sort_by_key(|(state, _)| state.as_str());
    assert_eq!(
        states,
        [
            (JobState::Enqueued, 0),
            (JobState::Processing, 1),
            (JobState::Processing, 1)
        ]
    );
    probe.gate.add_permits(2);
    server.shutdown().await;
}

async fn recurring_runs_carry_their_key_rate(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    jobs.recurring()
        .every(
            "call-7",
            Duration::from_secs(24 * 3600),
            CallTenantApi { tenant: 7, n: 0 },
        )
        .await
        .unwrap();
    // Off, so that only the runs triggered by hand run: three of one tenant.
    jobs.recurring().set_enabled("call-7", false).await.unwrap();
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(jobs.recurring().trigger("call-7").await.unwrap());
    }
    let server = server(&jobs, &probe).await;
    until_succeeded(&jobs, &runs, 2).await;
    after_a_claim(&jobs, 0).await;
    assert_eq!(first_attempts(&jobs, &runs).await, (2, 1, 0));
    server.shutdown().await;
}
