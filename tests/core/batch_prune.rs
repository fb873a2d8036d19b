//! Batch rows are pruned with the finished jobs, on each backend: a batch's row goes
//! once its members and its fan-in jobs are all gone, and stays while any is left.

use std::time::Duration;

use crate::support::{Backend, Probe, setup, test_server, wait_for_state, wait_until};
use jobs::prelude::*;
use jobs::{BatchId, Error, Jobs};

backend_tests!(a_batch_row_is_pruned_once_its_members_and_fan_in_are_gone);

/// A member: fails when asked to; never retried.
#[job(retries = 0)]
async fn part(n: u64, fail: bool) -> Result<u64, String> {
    if fail {
        return Err(format!("part {n} failed"));
    }
    Ok(n)
}

/// A fan-in: fails when asked to; never retried.
#[job(retries = 0)]
async fn assemble(State(probe): State<Probe>, fail: bool) -> Result<(), String> {
    probe.note(format!("assemble, failing: {fail}"));
    if fail {
        return Err("assembly failed".into());
    }
    Ok(())
}

/// A batch of `parts` members (the last failing when `failing_part`), whose `then`
/// job fails when `failing_fan_in`, with an `on_failure` job.
async fn enqueue(jobs: &Jobs, parts: u64, failing_part: bool, failing_fan_in: bool) -> BatchId {
    jobs.batch()
        .add_many((1..=parts).map(|n| Part {
            n,
            fail: failing_part && n == parts,
        }))
        .then(Assemble {
            fail: failing_fan_in,
        })
        .on_failure(Assemble { fail: false })
        .await
        .unwrap()
}

async fn a_batch_row_is_pruned_once_its_members_and_fan_in_are_gone(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let done = enqueue(&jobs, 3, false, false).await;
    let fan_in_failed = enqueue(&jobs, 2, false, true).await;
    let member_failed = enqueue(&jobs, 2, true, false).await;
    let server = test_server(&jobs, &probe)
        .delete_succeeded_after(Duration::from_secs(3600))
        .delete_deleted_after(Duration::from_secs(3600))
        .server_timeout(Duration::from_secs(24 * 3600))
        .start()
        .await
        .unwrap();
    let status = |batch| jobs.batch_status(batch);
    let then_of = |batch| async move { status(batch).await.unwrap().then_id.unwrap() };
    let on_failure_of = |batch| async move { status(batch).await.unwrap().on_failure_id.unwrap() };
    wait_for_state(&jobs, then_of(done).await, JobState::Succeeded).await;
    wait_for_state(&jobs, then_of(fan_in_failed).await, JobState::Failed).await;
    let alert = on_failure_of(member_failed).await;
    wait_for_state(&jobs, alert, JobState::Succeeded).await;

    // The finished jobs go an hour later: the succeeded batch's row with them.
    clock.advance(Duration::from_secs(2 * 3600));
    wait_until("the succeeded batch's row is pruned", || async {
        matches!(status(done).await, Err(Error::BatchNotFound(id)) if id == done)
    })
    .await;
    wait_until(
        "the other batches' succeeded members are pruned",
        || async {
            status(fan_in_failed).await.unwrap().succeeded == 0
                && status(member_failed).await.unwrap().succeeded == 0
        },
    )
    .await;
    // A failed fan-in job, or a failed member, keeps its batch's row.
    let kept = status(fan_in_failed).await.unwrap();
    assert_eq!((kept.total, kept.done()), (2, 0), "{kept:?}");
    let kept = status(member_failed).await.unwrap();
    assert_eq!((kept.total, kept.failed), (2, 1), "{kept:?}");
    server.shutdown().await;
}
