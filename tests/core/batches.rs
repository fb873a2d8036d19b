//! Batches with a fan-in on each backend: the fan-in runs once after every member, with
//! their results; a failed member runs the on-failure job and holds the fan-in until it
//! is requeued and succeeds; a batch is deleted and requeued as one; two servers ending
//! the last members at once release the fan-in once.

use std::time::Duration;

use crate::support::{Backend, Probe, setup, test_server, wait_for_state, wait_until};
use jobs::prelude::*;
use jobs::{BatchId, JobQuery, JobServer, Jobs};

backend_tests!(
    fan_in_runs_once_after_every_member_and_reads_their_results,
    failed_member_runs_on_failure_and_holds_the_fan_in_until_requeued,
    batch_requeue_requeues_the_failed_members_and_rearms_the_fan_in,
    deleting_a_batch_deletes_its_members_and_fan_in,
    empty_batch_runs_its_fan_in_at_once,
    two_servers_ending_the_last_members_at_once_release_the_fan_in_once,
    the_last_two_members_released_together_on_two_servers_release_the_fan_in_once,
    a_fan_in_takes_the_members_results_as_a_parameter,
);

/// A member: returns the square of `n`.
#[job(retries = 0)]
async fn square(State(probe): State<Probe>, ctx: JobContext, n: u64) -> Result<u64, String> {
    let _run = probe.start(ctx.id());
    Ok(n * n)
}

/// A member that fails unless the probe's gate has a permit; never retried.
#[job(retries = 0)]
async fn flaky_square(State(probe): State<Probe>, ctx: JobContext, n: u64) -> Result<u64, String> {
    let _run = probe.start(ctx.id());
    match probe.gate.try_acquire() {
        Ok(permit) => {
            permit.forget();
            Ok(n * n)
        }
        Err(_) => Err(format!("{n} failed")),
    }
}

/// A member that runs until it is stopped.
#[job(retries = 0)]
async fn runs_until_stopped(State(probe): State<Probe>, ctx: JobContext, n: u64) {
    let _run = probe.start(ctx.id());
    let _ = n;
    ctx.cancelled().await;
}

/// A member that waits for a permit of the probe's gate, then returns `n`.
#[job(retries = 0)]
async fn gated(State(probe): State<Probe>, ctx: JobContext, n: u64) -> Result<u64, String> {
    let _run = probe.start(ctx.id());
    probe.gate.acquire().await.expect("gate").forget();
    Ok(n)
}

/// The fan-in of gated members: notes how many results it read.
#[job(retries = 0)]
async fn count_gated(
    State(probe): State<Probe>,
    State(jobs): State<Jobs>,
    ctx: JobContext,
    batch: BatchId,
) -> Result<(), String> {
    let _run = probe.start(ctx.id());
    let results = jobs
        .batch_results::<Gated>(batch)
        .await
        .map_err(|error| error.to_string())?;
    probe.note(format!("{} results", results.len()));
    Ok(())
}

/// The fan-in: sums the members' results.
#[job(retries = 0)]
async fn sum_squares(
    State(probe): State<Probe>,
    State(jobs): State<Jobs>,
    ctx: JobContext,
    batch: BatchId,
) -> Result<u64, String> {
    let _run = probe.start(ctx.id());
    let results = jobs
        .batch_results::<Square>(batch)
        .await
        .map_err(|error| error.to_string())?;
    let flaky = jobs
        .batch_results::<FlakySquare>(batch)
        .await
        .map_err(|error| error.to_string())?;
    let sum: u64 = results
        .iter()
        .chain(&flaky)
        .map(|(_, square)| *square)
        .sum();
    probe.note(format!(
        "sum {sum} of {} results",
        results.len() + flaky.len()
    ));
    Ok(sum)
}

/// A fan-in that takes the results as a parameter; notes their sum.
#[job(retries = 0)]
async fn sum_given(State(probe): State<Probe>, BatchResults(squares): BatchResults<Square>) {
    let sum: u64 = squares.iter().map(|(_, square)| square).sum();
    probe.note(format!("given {} results summing {sum}", squares.len()));
}

/// The on-failure job.
#[job(retries = 0)]
async fn batch_failed(State(probe): State<Probe>, ctx: JobContext, batch: BatchId) {
    let _run = probe.start(ctx.id());
    probe.note(format!("failed {batch}"));
}

/// A server of four workers with the client as state, for fan-in jobs to read results.
pub(crate) async fn server(jobs: &Jobs, probe: &Probe) -> JobServer {
    test_server(jobs, probe)
        .state(jobs.clone())
        .worker_count(4)
        .server_timeout(Duration::from_secs(24 * 3600))
        .start()
        .await
        .unwrap()
}

/// The ids of the batch's members.
async fn members(jobs: &Jobs, batch: BatchId) -> Vec<JobId> {
    let page = jobs
        .list(JobQuery::default().batch(batch).limit(1000))
        .await
        .unwrap();
    page.items.iter().map(|job| job.id).collect()
}

async fn fan_in_runs_once_after_every_member_and_reads_their_results(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let batch = jobs.batch().label("squares");
    let id = batch.id();
    let stored = batch
        .add_many((1..=20).map(|n| Square { n }))
        .then(SumSquares { batch: id })
        .on_failure(BatchFailed { batch: id })
        .await
        .unwrap();
    assert_eq!(stored, id);
    let status = jobs.batch_status(id).await.unwrap();
    assert_eq!((status.total, status.waiting, status.done()), (20, 20, 0));
    assert_eq!(status.label.as_deref(), Some("squares"));
    let (then_id, on_failure_id) = (status.then_id.unwrap(), status.on_failure_id.unwrap());
    assert_eq!(jobs.get(then_id).await.unwrap().state, JobState::Awaiting);

    let server = server(&jobs, &probe).await;
    let fan_in = wait_for_state(&jobs, then_id, JobState::Succeeded).await;
    server.shutdown().await;
    let expected: u64 = (1..=20u64).map(|n| n * n).sum();
    assert_eq!(
        jobs.result::<SumSquares>(then_id).await.unwrap(),
        Some(expected)
    );
    assert_eq!(probe.notes(), [format!("sum {expected} of 20 results")]);
    assert_eq!(probe.runs(then_id), 1, "the fan-in ran once");
    let members = members(&jobs, id).await;
    assert_eq!(members.len(), 20);
    // After the last member: every member's end is recorded at or before the release.
    let released = fan_in
        .history
        .iter()
        .find(|entry| entry.state == JobState::Enqueued)
        .expect("released")
        .at;
    for member in &members {
        let info = jobs.get(*member).await.unwrap();
        assert_eq!(info.state, JobState::Succeeded);
        assert!(info.updated_at <= released);
    }
    assert_eq!(
        jobs.get(on_failure_id).await.unwrap().state,
        JobState::Deleted,
        "a succeeded batch drops its on-failure job"
    );
    assert_eq!(probe.runs(on_failure_id), 0);
    let status = jobs.batch_status(id).await.unwrap();
    assert_eq!((status.succeeded, status.done()), (20, 20));
    assert!(status.is_succeeded());
    assert_eq!(jobs.batch_results::<Square>(id).await.unwrap().len(), 20);
}

async fn failed_member_runs_on_failure_and_holds_the_fan_in_until_requeued(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let batch = jobs.batch();
    let id = batch.id();
    batch
        .add_many((1..=3).map(|n| Square { n }))
        .add(FlakySquare { n: 4 })
        .then(SumSquares { batch: id })
        .on_failure(BatchFailed { batch: id })
        .await
        .unwrap();
    let status = jobs.batch_status(id).await.unwrap();
    let (then_id, on_failure_id) = (status.then_id.unwrap(), status.on_failure_id.unwrap());
    let server = server(&jobs, &probe).await;
    wait_for_state(&jobs, on_failure_id, JobState::Succeeded).await;
    let status = jobs.batch_status(id).await.unwrap();
    assert_eq!((status.succeeded, status.failed), (3, 1));
    assert!(!status.is_succeeded());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        jobs.get(then_id).await.unwrap().state,
        JobState::Awaiting,
        "a failed member holds the fan-in"
    );

    let failed = jobs
        .list(JobQuery::state(JobState::Failed).batch(id))
        .await
        .unwrap();
    assert_eq!(failed.items.len(), 1);
    probe.gate.add_permits(1);
    assert!(jobs.requeue(failed.items[0].id).await.unwrap());
    wait_for_state(&jobs, then_id, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(probe.runs(then_id), 1);
    assert_eq!(probe.runs(on_failure_id), 1);
    assert_eq!(
        probe.notes(),
        [
            format!("failed {id}"),
            format!("sum {} of 4 results", 1 + 4 + 9 + 16)
        ]
    );
    assert!(jobs.batch_status(id).await.unwrap().is_succeeded());
}

async fn batch_requeue_requeues_the_failed_members_and_rearms_the_fan_in(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let batch = jobs.batch();
    let id = batch.id();
    batch
        .add_many((1..=3).map(|n| FlakySquare { n }))
        .add(Square { n: 4 })
        .then(SumSquares { batch: id })
        .on_failure(BatchFailed { batch: id })
        .await
        .unwrap();
    let status = jobs.batch_status(id).await.unwrap();
    let (then_id, on_failure_id) = (status.then_id.unwrap(), status.on_failure_id.unwrap());
    let server = server(&jobs, &probe).await;
    wait_for_state(&jobs, on_failure_id, JobState::Succeeded).await;
    assert_eq!(jobs.batch_status(id).await.unwrap().failed, 3);

    // Only one of the three gets through: the batch fails again, its on-failure job
    // runs again, the fan-in still waits.
    probe.gate.add_permits(1);
    assert_eq!(jobs.batch_requeue(id).await.unwrap(), 3);
    wait_until("the on-failure job ran again", || async {
        probe.runs(on_failure_id) == 2
    })
    .await;
    wait_for_state(&jobs, on_failure_id, JobState::Succeeded).await;
    let status = jobs.batch_status(id).await.unwrap();
    assert_eq!((status.succeeded, status.failed), (2, 2));
    assert_eq!(jobs.get(then_id).await.unwrap().state, JobState::Awaiting);

    probe.gate.add_permits(2);
    assert_eq!(jobs.batch_requeue(id).await.unwrap(), 2);
    wait_for_state(&jobs, then_id, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(probe.runs(then_id), 1);
    assert_eq!(probe.runs(on_failure_id), 2);
    assert_eq!(
        jobs.get(on_failure_id).await.unwrap().state,
        JobState::Deleted,
        "rearmed, then dropped when the batch succeeded"
    );
    assert_eq!(
        jobs.result::<SumSquares>(then_id).await.unwrap(),
        Some(1 + 4 + 9 + 16)
    );
    assert!(matches!(
        jobs.batch_requeue(BatchId::new()).await,
        Err(jobs::Error::BatchNotFound(_))
    ));
}

async fn deleting_a_batch_deletes_its_members_and_fan_in(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let batch = jobs.batch();
    let id = batch.id();
    batch
        .add_many((1..=3).map(|n| RunsUntilStopped { n }))
        .add_many((1..=5).map(|n| Square { n }))
        .then(SumSquares { batch: id })
        .on_failure(BatchFailed { batch: id })
        .await
        .unwrap();
    let status = jobs.batch_status(id).await.unwrap();
    let (then_id, on_failure_id) = (status.then_id.unwrap(), status.on_failure_id.unwrap());
    let server = server(&jobs, &probe).await;
    wait_until("five members succeeded and three run", || async {
        let status = jobs.batch_status(id).await.unwrap();
        status.succeeded == 5 && status.running == 3
    })
    .await;
    assert_eq!(
        jobs.batch_delete(id).await.unwrap(),
        8,
        "every member, ended or not"
    );
    wait_until("the running members stopped", || async {
        probe.running() == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.shutdown().await;
    for fan_in in [then_id, on_failure_id] {
        assert_eq!(jobs.get(fan_in).await.unwrap().state, JobState::Deleted);
        assert_eq!(probe.runs(fan_in), 0);
    }
    let status = jobs.batch_status(id).await.unwrap();
    assert_eq!((status.deleted, status.done()), (8, 8));
    assert!(matches!(
        jobs.batch_delete(BatchId::new()).await,
        Err(jobs::Error::BatchNotFound(_))
    ));
}

async fn empty_batch_runs_its_fan_in_at_once(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let batch = jobs.batch();
    let id = batch.id();
    batch
        .add_many(Vec::<Square>::new())
        .then(SumSquares { batch: id })
        .on_failure(BatchFailed { batch: id })
        .await
        .unwrap();
    let status = jobs.batch_status(id).await.unwrap();
    assert_eq!((status.total, status.on_failure_id), (0, None));
    let server = server(&jobs, &probe).await;
    wait_for_state(&jobs, status.then_id.unwrap(), JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(probe.notes(), ["sum 0 of 0 results"]);
}

async fn two_servers_ending_the_last_members_at_once_release_the_fan_in_once(backend: Backend) {
    let (db, clock, jobs, probe) = setup(backend).await;
    let other = db.jobs(&clock).await;
    let servers = [server(&jobs, &probe).await, server(&other, &probe).await];
    for round in 0..10 {
        let batch = jobs.batch();
        let id = batch.id();
        batch
            .add_many((1..=16).map(|n| Square { n }))
            .then(SumSquares { batch: id })
            .await
            .unwrap();
        let then_id = jobs.batch_status(id).await.unwrap().then_id.unwrap();
        wait_for_state(&jobs, then_id, JobState::Succeeded).await;
        assert_eq!(probe.runs(then_id), 1, "round {round}: the fan-in ran once");
        let released = jobs
            .get(then_id)
            .await
            .unwrap()
            .history
            .iter()
            .filter(|entry| entry.state == JobState::Enqueued)
            .count();
        assert_eq!(released, 1, "round {round}: released once");
    }
    for server in servers {
        server.shutdown().await;
    }
    let expected: u64 = (1..=16u64).map(|n| n * n).sum();
    assert_eq!(
        probe.notes(),
        vec![format!("sum {expected} of 16 results"); 10]
    );
}

async fn the_last_two_members_released_together_on_two_servers_release_the_fan_in_once(
    backend: Backend,
) {
    let (db, clock, jobs, probe) = setup(backend).await;
    let other = db.jobs(&clock).await;
    // One worker each: two members running at once run on the two servers.
    let mut servers = Vec::new();
    for client in [&jobs, &other] {
        let server = test_server(client, &probe)
            .state(client.clone())
            .worker_count(1)
            .server_timeout(Duration::from_secs(24 * 3600))
            .start()
            .await
            .unwrap();
        servers.push(server);
    }
    for round in 0..10 {
        let batch = jobs.batch();
        let id = batch.id();
        batch
            .add_many((1..=2).map(|n| Gated { n }))
            .then(CountGated { batch: id })
            .await
            .unwrap();
        wait_until("both members run, one on each server", || async {
            probe.running() == 2
        })
        .await;
        probe.gate.add_permits(2);
        let then_id = jobs.batch_status(id).await.unwrap().then_id.unwrap();
        wait_for_state(&jobs, then_id, JobState::Succeeded).await;
        assert_eq!(probe.runs(then_id), 1, "round {round}: the fan-in ran once");
        let history = jobs.get(then_id).await.unwrap().history;
        let released = history
            .iter()
            .filter(|entry| entry.state == JobState::Enqueued)
            .count();
        assert_eq!(released, 1, "round {round}: released once");
    }
    for server in servers {
        server.shutdown().await;
    }
    assert_eq!(probe.notes(), vec!["2 results".to_owned(); 10]);
}

async fn a_fan_in_takes_the_members_results_as_a_parameter(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let id = jobs
        .batch()
        .add_many((1..=4).map(|n| Square { n }))
        .add(FlakySquare { n: 5 })
        .then(SumGiven {})
        .on_failure(SumGiven {})
        .await
        .unwrap();
    let status = jobs.batch_status(id).await.unwrap();
    let server = server(&jobs, &probe).await;
    // The flaky member fails: the on-failure job gets the four that succeeded.
    wait_for_state(&jobs, status.on_failure_id.unwrap(), JobState::Succeeded).await;
    probe.gate.add_permits(1);
    jobs.batch_requeue(id).await.unwrap();
    wait_for_state(&jobs, status.then_id.unwrap(), JobState::Succeeded).await;
    // Not a fan-in: fails for good, saying so.
    let alone = jobs.enqueue(SumGiven {}).await.unwrap();
    let failed = wait_for_state(&jobs, alone, JobState::Failed).await;
    server.shutdown().await;
    assert_eq!(
        probe.notes(),
        ["given 4 results summing 30", "given 4 results summing 30"],
        "FlakySquare's result is not a Square's"
    );
    let error = failed.history.last().unwrap().error.as_ref().unwrap();
    assert!(
        error.message.contains("is the fan-in of no batch"),
        "{}",
        error.message
    );
}
