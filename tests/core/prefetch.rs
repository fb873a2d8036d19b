//! Claiming ahead of free workers: while jobs are short, claims take more jobs than
//! there are free workers and a worker whose job ends takes the next of them; long jobs
//! never lead to that; jobs claimed ahead that find no free worker go back, at once at
//! shutdown, within a second otherwise. Every test runs on SQLite and PostgreSQL, each
//! on a database of its own.

use std::time::Duration;

use crate::support::{
    Backend, Probe, run_all_once, setup, wait_for_job, wait_for_state, wait_until,
};
use jobs::prelude::*;
use jobs::{JobId, JobServer, JobServerBuilder, Jobs, ManualClock};

backend_tests!(
    a_job_claimed_ahead_goes_back_when_no_worker_frees_up,
    shutdown_puts_back_jobs_claimed_ahead,
    no_claim_ahead_with_prefetch_zero_or_queue_limits,
    long_jobs_never_lead_to_a_claim_ahead,
    two_thousand_short_jobs_on_two_workers_run_once_each,
    a_job_deleted_while_claimed_ahead_never_starts,
);

#[job]
async fn quick(State(probe): State<Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
}

#[job]
async fn gated(State(probe): State<Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
    probe.gate.acquire().await.expect("gate open").forget();
}

fn one_worker(jobs: &Jobs, probe: &Probe) -> JobServerBuilder {
    JobServer::builder(jobs.clone())
        .state(probe.clone())
        .worker_count(1)
        .poll_interval(Duration::from_secs(5))
        .server_timeout(Duration::from_secs(30 * 24 * 3600))
}

/// Enqueues a quick job, a gated one and a quick one, due in that order.
async fn quick_gated_quick(jobs: &Jobs, clock: &ManualClock) -> [JobId; 3] {
    let first = jobs.enqueue(Quick {}).await.unwrap();
    clock.advance(Duration::from_millis(1));
    let gated = jobs.enqueue(Gated {}).await.unwrap();
    clock.advance(Duration::from_millis(1));
    let last = jobs.enqueue(Quick {}).await.unwrap();
    clock.advance(Duration::from_millis(1));
    [first, gated, last]
}

/// With one worker, the first job is short, so the next claim takes one job for the
/// free worker and up to eight ahead (the one left): the gated job runs and the last
/// waits, claimed by this server but not started.
async fn wait_until_claimed_ahead(jobs: &Jobs, probe: &Probe, [first, gated, last]: [JobId; 3]) {
    wait_for_state(jobs, first, JobState::Succeeded).await;
    wait_until("the gated job runs", || async { probe.runs(gated) == 1 }).await;
    wait_for_state(jobs, last, JobState::Processing).await;
    assert_eq!(probe.runs(last), 0, "claimed ahead, not started");
    assert_eq!(probe.running(), 1, "one worker");
}

async fn a_job_claimed_ahead_goes_back_when_no_worker_frees_up(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let ids = quick_gated_quick(&jobs, &clock).await;
    let server = one_worker(&jobs, &probe).start().await.unwrap();
    wait_until_claimed_ahead(&jobs, &probe, ids).await;
    let [_, gated, last] = ids;
    let info = jobs.get(last).await.unwrap();
    assert_eq!(info.owner.as_deref(), Some(server.id()));
    assert_eq!(info.attempt, 1);

    // The gated job holds the only worker: within a second the other goes back, its
    // attempt not counted, for any server to take.
    let info = wait_for_state(&jobs, last, JobState::Enqueued).await;
    assert_eq!(info.attempt, 0, "a job put back did not run");
    assert_eq!(info.owner, None);
    assert_eq!(probe.runs(last), 0);
    let states: Vec<_> = info.history.iter().map(|event| event.state).collect();
    assert_eq!(
        states,
        [JobState::Enqueued, JobState::Processing, JobState::Enqueued]
    );

    // The worker frees up: the job is claimed again and runs once.
    probe.gate.add_permits(1);
    let info = wait_for_state(&jobs, last, JobState::Succeeded).await;
    assert_eq!(info.attempt, 1);
    wait_for_state(&jobs, gated, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(probe.runs(last), 1);
    assert_eq!(probe.runs(gated), 1);
}

async fn shutdown_puts_back_jobs_claimed_ahead(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let ids = quick_gated_quick(&jobs, &clock).await;
    let server = one_worker(&jobs, &probe)
        .shutdown_grace(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    wait_until_claimed_ahead(&jobs, &probe, ids).await;
    server.shutdown().await;
    let [_, gated, last] = ids;
    for id in [gated, last] {
        let info = jobs.get(id).await.unwrap();
        assert_eq!(info.state, JobState::Enqueued, "{:#?}", info.history);
        assert_eq!(info.attempt, 0);
        assert_eq!(info.owner, None);
    }
    assert_eq!(probe.runs(last), 0, "a job claimed ahead never started");

    probe.gate.add_permits(1);
    let next = one_worker(&jobs, &probe).start().await.unwrap();
    for id in [gated, last] {
        let info = wait_for_state(&jobs, id, JobState::Succeeded).await;
        assert_eq!(info.attempt, 1);
    }
    next.shutdown().await;
    assert_eq!(probe.runs(last), 1);
}

async fn a_job_deleted_while_claimed_ahead_never_starts(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let ids = quick_gated_quick(&jobs, &clock).await;
    let server = one_worker(&jobs, &probe).start().await.unwrap();
    wait_until_claimed_ahead(&jobs, &probe, ids).await;
    let [_, gated, last] = ids;
    // Deleted while it waits claimed ahead, and at once the worker frees up: the job it
    // would take next is gone.
    assert!(jobs.delete(last).await.unwrap());
    probe.gate.add_permits(1);
    wait_for_state(&jobs, gated, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(
        probe.runs(last),
        0,
        "deleted while claimed ahead: never started"
    );
    let info = jobs.get(last).await.unwrap();
    assert_eq!(info.state, JobState::Deleted, "{:#?}", info.history);
}

async fn no_claim_ahead_with_prefetch_zero_or_queue_limits(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let builders: [fn(JobServerBuilder) -> JobServerBuilder; 2] = [
        |builder| builder.prefetch(0),
        |builder| builder.queue_limit("other", 1),
    ];
    for limit in builders {
        let [first, gated, last] = quick_gated_quick(&jobs, &clock).await;
        let server = limit(one_worker(&jobs, &probe)).start().await.unwrap();
        wait_for_state(&jobs, first, JobState::Succeeded).await;
        wait_until("the gated job runs", || async { probe.runs(gated) == 1 }).await;
        // The worker is busy: nothing more is claimed while it is.
        wait_for_job(&jobs, gated, "is recorded as running", |info| {
            info.state == JobState::Processing
        })
        .await;
        not_claimed_until_the_worker_frees_up(&jobs, &probe, server, last).await;
    }
}

#[job]
async fn slow(State(probe): State<Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
    // Longer than a short job (a sixteenth of the one-second wait of jobs claimed ahead).
    tokio::time::sleep(Duration::from_millis(300)).await;
    probe.gate.acquire().await.expect("gate open").forget();
}

async fn long_jobs_never_lead_to_a_claim_ahead(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let first = jobs.enqueue(Slow {}).await.unwrap();
    clock.advance(Duration::from_millis(1));
    let second = jobs.enqueue(Slow {}).await.unwrap();
    clock.advance(Duration::from_millis(1));
    let last = jobs.enqueue(Quick {}).await.unwrap();
    clock.advance(Duration::from_millis(1));
    let server = one_worker(&jobs, &probe).start().await.unwrap();
    wait_until("the first job runs", || async { probe.runs(first) == 1 }).await;
    probe.gate.add_permits(1);
    wait_for_state(&jobs, first, JobState::Succeeded).await;
    // The first job was long: the next claim takes one job for the free worker only.
    wait_until("the second job runs", || async { probe.runs(second) == 1 }).await;
    not_claimed_until_the_worker_frees_up(&jobs, &probe, server, last).await;
}

/// While the only worker runs a gated job, `last` is not claimed; once the gate opens
/// it runs once.
async fn not_claimed_until_the_worker_frees_up(
    jobs: &Jobs,
    probe: &Probe,
    server: JobServer,
    last: JobId,
) {
    let info = jobs.get(last).await.unwrap();
    assert_eq!(info.state, JobState::Enqueued, "{:#?}", info.history);
    assert_eq!(info.history.len(), 1);

    probe.gate.add_permits(1);
    wait_for_state(jobs, last, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(probe.runs(last), 1);
}

async fn two_thousand_short_jobs_on_two_workers_run_once_each(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let ids = jobs
        .enqueue_many((0..2000).map(|_| Quick {}))
        .await
        .unwrap();
    run_all_once(&jobs, &probe, &ids, 2).await;
    for id in ids.iter().step_by(97) {
        let info = jobs.get(*id).await.unwrap();
        assert_eq!(info.attempt, 1);
        let states: Vec<_> = info.history.iter().map(|event| event.state).collect();
        assert_eq!(
            states,
            [
                JobState::Enqueued,
                JobState::Processing,
                JobState::Succeeded
            ]
        );
    }
}
