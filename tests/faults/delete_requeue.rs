//! A running job deleted from another process (an operator's dashboard), then requeued
//! from there at once: never two executions at once, and the job ends the way the last
//! action asked (requeued: it runs again, to `Succeeded`, after the stopped attempt).

use std::collections::HashMap;
use std::time::Duration;

use jobs::prelude::*;
use jobs::{JobId, Jobs};
use tokio::time::Instant;

use crate::node::Node;
use crate::support::fault::{self, ExecutionLog, wait_within};
use crate::support::{Backend, TestDb, wait_for_state};
use crate::{Work, assert_all_ended, assert_no_overlaps};

backend_tests!(delete_then_requeue_of_a_running_job_from_another_process);

const JOB_LENGTH: Duration = Duration::from_secs(3);

async fn delete_then_requeue_of_a_running_job_from_another_process(backend: Backend) {
    let _serial = fault::serial().await;
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let log = ExecutionLog::open(dir.path().join("executions")).unwrap();
    let operator = Jobs::connect(&db.url).await.unwrap();
    let node = Node::new(4, Duration::from_secs(2)).spawn(&db.url, &log);
    let id = operator
        .enqueue(Work {
            n: 0,
            millis: u64::try_from(JOB_LENGTH.as_millis()).unwrap(),
        })
        .await
        .unwrap();
    wait_within("the job runs", Duration::from_secs(20), || async {
        !log.runs().is_empty()
    })
    .await;

    assert!(operator.delete(id).await.unwrap(), "deleted");
    let requeued_at = requeue_when_allowed(&operator, id).await;

    let info = wait_for_state(&operator, id, JobState::Succeeded).await;
    // The stopped attempt's end must not change the outcome afterwards.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = operator.get(id).await.unwrap();
    node.stop(Duration::from_secs(20)).await;

    let runs = log.runs();
    assert_no_overlaps(&runs, &HashMap::new());
    assert_all_ended(&runs);
    assert_eq!(after.state, JobState::Succeeded, "{:#?}", after.history);
    assert_eq!(after.attempt, info.attempt);
    let last = runs.last().expect("executions");
    assert!(
        last.start >= requeued_at,
        "the job's last execution started before the requeue: {runs:?}"
    );
    assert!(
        last.end.unwrap() - last.start >= u64::try_from(JOB_LENGTH.as_nanos()).unwrap(),
        "the run after the requeue was cut short: {runs:?}"
    );
    println!(
        "{backend:?}: {} executions, final attempt {}",
        runs.len(),
        after.attempt
    );
}

/// Requeues `id`, retrying while the library refuses because its attempt is still
/// stopping; returns when the requeue that was accepted was asked for (monotonic
/// nanoseconds).
async fn requeue_when_allowed(jobs: &Jobs, id: JobId) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let asked = fault::monotonic_ns();
        match jobs.requeue(id).await {
            Ok(true) => return asked,
            Ok(false) => panic!("requeue of the deleted job {id} found nothing to requeue"),
            Err(error) => {
                assert!(
                    Instant::now() < deadline,
                    "requeue still refused after 20 s: {error}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
