//! Batches as steps of chains, on each backend: the members wait for the job before the
//! batch, what follows the batch waits for its fan-in, a failure before the batch holds
//! the members until a requeue, and a delete takes the members and the fan-in along.

use crate::batches::server;
use crate::support::{Backend, Probe, setup, wait_for_state};
use jobs::prelude::*;
use jobs::{BatchId, Error, JobId, JobQuery, Jobs};

backend_tests!(
    a_batch_in_a_chain_waits_for_the_job_before_it_and_the_next_step_for_its_fan_in,
    a_failure_before_the_batch_holds_its_members_until_a_requeue,
    the_step_after_a_batch_without_a_then_job_is_its_fan_in,
    deleting_the_job_before_a_batch_deletes_its_members_and_what_follows,
    an_empty_batch_in_a_chain_follows_the_job_before_it,
    a_chain_refuses_a_second_batch_and_a_dedupe_id,
);

/// The job before the batch: fails unless the probe's gate has a permit; never retried.
#[job(retries = 0)]
async fn split(State(probe): State<Probe>, parts: u64) -> Result<u64, String> {
    if probe
        .gate
        .try_acquire()
        .map(|permit| permit.forget())
        .is_err()
    {
        return Err("the split failed".into());
    }
    probe.note(format!("split into {parts}"));
    Ok(parts)
}

/// A member: notes and returns twice `n`.
#[job(retries = 0)]
async fn double(State(probe): State<Probe>, n: u64) -> Result<u64, String> {
    probe.note(format!("double {n}"));
    Ok(n * 2)
}

/// The fan-in: sums the members' results.
#[job(retries = 0)]
async fn total(
    State(probe): State<Probe>,
    State(jobs): State<Jobs>,
    batch: BatchId,
) -> Result<u64, String> {
    let results = jobs
        .batch_results::<Double>(batch)
        .await
        .map_err(|error| error.to_string())?;
    let sum = results.iter().map(|(_, doubled)| doubled).sum();
    probe.note(format!("total {sum} of {}", results.len()));
    Ok(sum)
}

/// What follows the fan-in: reads what it returned.
#[job(retries = 0)]
async fn report(State(probe): State<Probe>, Parent(total): Parent<u64>) {
    probe.note(format!("report {total}"));
}

/// The members' states, sorted.
async fn member_states(jobs: &Jobs, batch: BatchId) -> Vec<JobState> {
    let page = jobs.list(JobQuery::default().batch(batch)).await.unwrap();
    let mut states: Vec<JobState> = page.items.iter().map(|job| job.state).collect();
    states.sort_by_key(|state| state.as_str());
    states
}

/// `split(3)`, then a batch doubling 1, 2 and 3 whose fan-in totals them, then a
/// report of the total; → the chain's ids (split, total, report) and the batch.
async fn enqueue_pipeline(jobs: &Jobs) -> (Vec<JobId>, BatchId) {
    let batch = jobs.batch().label("doubles");
    let id = batch.id();
    let batch = batch
        .add_many((1..=3).map(|n| Double { n }))
        .then(Total { batch: id });
    let ids = jobs
        .enqueue(Split { parts: 3 })
        .then_batch(batch)
        .then(Report {})
        .await
        .unwrap();
    (ids, id)
}

/// The notes, the members' (which run in any order) sorted among themselves.
fn notes_in_order(probe: &Probe) -> Vec<String> {
    let mut notes = probe.notes();
    notes[1..4].sort();
    notes
}

async fn a_batch_in_a_chain_waits_for_the_job_before_it_and_the_next_step_for_its_fan_in(
    backend: Backend,
) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let (ids, batch) = enqueue_pipeline(&jobs).await;
    assert_eq!(ids.len(), 3, "split, the fan-in and the report: {ids:?}");
    let status = jobs.batch_status(batch).await.unwrap();
    assert_eq!((status.total, status.waiting), (3, 3));
    assert_eq!(status.then_id, Some(ids[1]));
    assert_eq!(member_states(&jobs, batch).await, [JobState::Awaiting; 3]);
    for id in &ids[1..] {
        assert_eq!(jobs.get(*id).await.unwrap().state, JobState::Awaiting);
    }

    probe.gate.add_permits(1);
    let server = server(&jobs, &probe).await;
    wait_for_state(&jobs, ids[2], JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(
        notes_in_order(&probe),
        [
            "split into 3",
            "double 1",
            "double 2",
            "double 3",
            "total 12 of 3",
            "report 12"
        ]
    );
    assert_eq!(member_states(&jobs, batch).await, [JobState::Succeeded; 3]);
}

async fn a_failure_before_the_batch_holds_its_members_until_a_requeue(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let (ids, batch) = enqueue_pipeline(&jobs).await;
    let server = server(&jobs, &probe).await;
    wait_for_state(&jobs, ids[0], JobState::Failed).await;
    // The failure's transaction released nothing of the batch.
    assert_eq!(member_states(&jobs, batch).await, [JobState::Awaiting; 3]);
    assert_eq!(jobs.get(ids[1]).await.unwrap().state, JobState::Awaiting);
    assert!(probe.notes().is_empty());

    probe.gate.add_permits(1);
    assert!(jobs.requeue(ids[0]).await.unwrap());
    wait_for_state(&jobs, ids[2], JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(notes_in_order(&probe).last().unwrap(), "report 12");
}

async fn the_step_after_a_batch_without_a_then_job_is_its_fan_in(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let batch = jobs.batch();
    let id = batch.id();
    let ids = jobs
        .enqueue(Split { parts: 2 })
        .then_batch(batch.add_many((1..=2).map(|n| Double { n })))
        .then(Total { batch: id })
        .then(Report {})
        .await
        .unwrap();
    assert_eq!(ids.len(), 3);
    let status = jobs.batch_status(id).await.unwrap();
    assert_eq!(status.then_id, Some(ids[1]), "the next step is the fan-in");

    probe.gate.add_permits(1);
    let server = server(&jobs, &probe).await;
    wait_for_state(&jobs, ids[2], JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(
        probe.notes()[3..],
        ["total 6 of 2".to_owned(), "report 6".to_owned()]
    );
}

async fn deleting_the_job_before_a_batch_deletes_its_members_and_what_follows(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let (ids, batch) = enqueue_pipeline(&jobs).await;
    assert!(jobs.delete(ids[0]).await.unwrap());
    assert_eq!(member_states(&jobs, batch).await, [JobState::Deleted; 3]);
    for id in &ids {
        assert_eq!(
            jobs.get(*id).await.unwrap().state,
            JobState::Deleted,
            "job {id}"
        );
    }
    // Nothing of it runs: the members' end released no fan-in.
    probe.gate.add_permits(1);
    let server = server(&jobs, &probe).await;
    let canary = jobs.enqueue(Double { n: 0 }).await.unwrap();
    wait_for_state(&jobs, canary, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(probe.notes(), ["double 0"]);
}

async fn an_empty_batch_in_a_chain_follows_the_job_before_it(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let batch = jobs.batch();
    let id = batch.id();
    let ids = jobs
        .enqueue(Split { parts: 0 })
        .then_batch(batch.add_many(std::iter::empty::<Double>()))
        .then(Total { batch: id })
        .await
        .unwrap();
    assert_eq!(jobs.get(ids[1]).await.unwrap().state, JobState::Awaiting);
    probe.gate.add_permits(1);
    let server = server(&jobs, &probe).await;
    wait_for_state(&jobs, ids[1], JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(probe.notes(), ["split into 0", "total 0 of 0"]);
}

async fn a_chain_refuses_a_second_batch_and_a_dedupe_id(backend: Backend) {
    let (_db, _clock, jobs, _probe) = setup(backend).await;
    let twice = jobs
        .enqueue(Split { parts: 1 })
        .then_batch(jobs.batch().add(Double { n: 1 }))
        .then(Report {})
        .then_batch(jobs.batch().add(Double { n: 2 }))
        .await;
    assert!(
        matches!(&twice, Err(Error::Config(reason)) if reason.contains("one batch")),
        "{twice:?}"
    );
    let keyed = jobs
        .enqueue(Split { parts: 1 })
        .id(JobId::from_key("split-1"))
        .then_batch(jobs.batch().add(Double { n: 1 }))
        .await;
    assert!(
        matches!(&keyed, Err(Error::Config(reason)) if reason.contains("id of its own")),
        "{keyed:?}"
    );
    assert_eq!(jobs.count_by_state().await.unwrap(), [], "nothing stored");
}
