//! Partitioned limits: `#[job(concurrency_key = "…", concurrency = n)]` runs at most `n`
//! jobs of one key at once, on one server or several, while the jobs of other keys run
//! beside them; a job that waits for its key stays `Enqueued`, uncharged.

use crate::support::{Backend, LONG_LEASE, Probe, TestDb, setup, test_server, wait_until};
use jobs::prelude::*;
use jobs::{JobId, JobServer, Jobs, ManualClock};

backend_tests!(
    jobs_of_one_key_run_one_at_a_time_while_other_keys_run,
    a_concurrency_of_two_runs_two_jobs_of_a_key_at_once,
    a_job_waiting_for_its_key_is_not_charged_an_attempt,
    a_key_limit_holds_across_two_servers_claiming_at_once,
    recurring_runs_are_keyed_from_their_arguments,
    an_enqueue_can_give_a_run_another_key,
);

/// Runs until the probe's gate lets it through, counted under its tenant and under
/// `all` meanwhile.
#[job(concurrency_key = "tenant-{tenant}", display = "Sync {tenant}/{n}")]
async fn sync_tenant(State(probe): State<Probe>, tenant: u32, n: u32) {
    let _ = n;
    let _key = probe.inside(&format!("tenant-{tenant}"));
    let _all = probe.inside("all");
    probe.gate.acquire().await.expect("gate open").forget();
}

/// As `sync_tenant`, two at a time per account.
#[job(concurrency_key = "account-{account}", concurrency = 2)]
async fn build_report(State(probe): State<Probe>, account: u32, n: u32) {
    let _ = n;
    let _key = probe.inside(&format!("account-{account}"));
    let _all = probe.inside("all");
    probe.gate.acquire().await.expect("gate open").forget();
}

async fn count_in(jobs: &Jobs, state: JobState) -> u64 {
    jobs.count_by_state()
        .await
        .unwrap()
        .iter()
        .find(|(counted, _)| *counted == state)
        .map_or(0, |(_, count)| *count)
}

/// Opens the gate one job at a time until `total` jobs succeeded, checking after each
/// that no more than `most` are `Processing`.
async fn release_one_by_one(jobs: &Jobs, probe: &Probe, total: u64, most: u64) {
    for released in 1..=total {
        probe.gate.add_permits(1);
        wait_until("the released job succeeded", || async {
            count_in(jobs, JobState::Succeeded).await == released
        })
        .await;
        let processing = count_in(jobs, JobState::Processing).await;
        assert!(processing <= most, "{processing} processing at once");
    }
}

async fn jobs_of_one_key_run_one_at_a_time_while_other_keys_run(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    // Tenant by tenant: the first tenant's waiting jobs come first in claim order.
    jobs.enqueue_many((0..3).flat_map(|tenant| (0..3).map(move |n| SyncTenant { tenant, n })))
        .await
        .unwrap();
    let server = test_server(&jobs, &probe)
        .worker_count(8)
        .start()
        .await
        .unwrap();
    // Eight free workers and nine jobs: one of each tenant starts, the others wait.
    wait_until("one job of each tenant runs", || async {
        probe.running_in("all") == 3
    })
    .await;
    for tenant in 0..3 {
        assert_eq!(probe.running_in(&format!("tenant-{tenant}")), 1);
    }
    assert_eq!(count_in(&jobs, JobState::Processing).await, 3);
    assert_eq!(count_in(&jobs, JobState::Enqueued).await, 6);
    release_one_by_one(&jobs, &probe, 9, 3).await;
    for tenant in 0..3 {
        assert_eq!(
            probe.max_of(&format!("tenant-{tenant}")),
            1,
            "the most of tenant {tenant} at once"
        );
    }
    assert_eq!(probe.max_of("all"), 3, "the tenants ran side by side");
    server.shutdown().await;
}

async fn a_concurrency_of_two_runs_two_jobs_of_a_key_at_once(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    jobs.enqueue_many((0..5).map(|n| BuildReport { account: 1, n }))
        .await
        .unwrap();
    jobs.enqueue(BuildReport { account: 2, n: 0 })
        .await
        .unwrap();
    let server = test_server(&jobs, &probe)
        .worker_count(8)
        .start()
        .await
        .unwrap();
    wait_until("two of account 1 and the one of account 2 run", || async {
        probe.running_in("account-1") == 2 && probe.running_in("account-2") == 1
    })
    .await;
    assert_eq!(count_in(&jobs, JobState::Processing).await, 3);
    release_one_by_one(&jobs, &probe, 6, 3).await;
    assert_eq!(
        probe.max_of("account-1"),
        2,
        "the most of account 1 at once"
    );
    server.shutdown().await;
}

async fn a_job_waiting_for_its_key_is_not_charged_an_attempt(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let ids: Vec<JobId> = jobs
        .enqueue_many((0..2).map(|n| SyncTenant { tenant: 9, n }))
        .await
        .unwrap();
    // Leases that outlast the moves of the clock below.
    let server = test_server(&jobs, &probe)
        .worker_count(4)
        .server_timeout(LONG_LEASE)
        .start()
        .await
        .unwrap();
    wait_until("one runs", || async { probe.running_in("tenant-9") == 1 }).await;
    // Time passes and the server claims again and again: the other job stays waiting.
    for _ in 0..3 {
        clock.advance(std::time::Duration::from_secs(60));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut infos = Vec::new();
    for id in &ids {
        infos.push(jobs.get(*id).await.unwrap());
    }
    let mut states: Vec<JobState> = infos.iter().map(|info| info.state).collect();
    states.sort_by_key(|state| state.as_str());
    assert_eq!(states, [JobState::Enqueued, JobState::Processing]);
    let waiting = infos
        .iter()
        .find(|info| info.state == JobState::Enqueued)
        .expect("a waiting job");
    assert_eq!(waiting.attempt, 0, "the waiting job was charged an attempt");
    assert_eq!(probe.running_in("tenant-9"), 1);
    release_one_by_one(&jobs, &probe, 2, 1).await;
    let info = jobs.get(waiting.id).await.unwrap();
    assert_eq!((info.state, info.attempt), (JobState::Succeeded, 1));
    server.shutdown().await;
}

/// A server of its own pool on the test's database, as another replica has.
async fn replica(db: &TestDb, clock: &ManualClock, probe: &Probe) -> JobServer {
    let jobs = db.jobs(clock).await;
    test_server(&jobs, probe)
        .worker_count(8)
        .start()
        .await
        .expect("server starts")
}

async fn a_key_limit_holds_across_two_servers_claiming_at_once(backend: Backend) {
    const TENANTS: u32 = 4;
    const EACH: u32 = 6;
    let (db, clock, jobs, probe) = setup(backend).await;
    jobs.enqueue_many(
        (0..TENANTS).flat_map(|tenant| (0..EACH).map(move |n| SyncTenant { tenant, n })),
    )
    .await
    .unwrap();
    // Sixteen free workers between them and a backlog of 24: without the limit both
    // would take eight at once.
    let (one, two) = tokio::join!(replica(&db, &clock, &probe), replica(&db, &clock, &probe));
    wait_until("one job of each tenant runs", || async {
        probe.running_in("all") == TENANTS
    })
    .await;
    release_one_by_one(&jobs, &probe, u64::from(TENANTS * EACH), u64::from(TENANTS)).await;
    for tenant in 0..TENANTS {
        assert_eq!(
            probe.max_of(&format!("tenant-{tenant}")),
            1,
            "the most of tenant {tenant} at once"
        );
    }
    one.shutdown().await;
    two.shutdown().await;
}

async fn recurring_runs_are_keyed_from_their_arguments(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    jobs.recurring()
        .every(
            "sync-7",
            std::time::Duration::from_secs(24 * 3600),
            SyncTenant { tenant: 7, n: 0 },
        )
        .await
        .unwrap();
    // Off, so that only the runs triggered by hand run: two of one tenant at once.
    jobs.recurring().set_enabled("sync-7", false).await.unwrap();
    for _ in 0..2 {
        jobs.recurring().trigger("sync-7").await.unwrap();
    }
    let server = test_server(&jobs, &probe)
        .worker_count(4)
        .start()
        .await
        .unwrap();
    wait_until("one run runs", || async {
        probe.running_in("tenant-7") == 1
    })
    .await;
    assert_eq!(count_in(&jobs, JobState::Processing).await, 1);
    assert_eq!(count_in(&jobs, JobState::Enqueued).await, 1);
    release_one_by_one(&jobs, &probe, 2, 1).await;
    assert_eq!(probe.max_of("tenant-7"), 1, "the most of tenant 7 at once");
    server.shutdown().await;
}

async fn an_enqueue_can_give_a_run_another_key(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    // Tenant 1's sync counted under tenant 2's key: the two take turns.
    jobs.enqueue(SyncTenant { tenant: 1, n: 0 })
        .concurrency_key("tenant-2")
        .await
        .unwrap();
    jobs.enqueue(SyncTenant { tenant: 2, n: 0 }).await.unwrap();
    let server = test_server(&jobs, &probe)
        .worker_count(4)
        .start()
        .await
        .unwrap();
    wait_until("one runs", || async { probe.running_in("all") == 1 }).await;
    assert_eq!(count_in(&jobs, JobState::Enqueued).await, 1);
    release_one_by_one(&jobs, &probe, 2, 1).await;
    assert_eq!(probe.max_of("all"), 1, "the most at once");
    server.shutdown().await;
}
