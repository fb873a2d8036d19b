//! A node whose runtime is one thread runs a job that blocks that thread (user code
//! calling `std::thread::sleep`) for 2.5 times the server timeout, while another node
//! watches for dead servers: the blocked node's heartbeat connection lives, so its job
//! is not rescued; it runs once, to `Succeeded`, with no rescue in its history.

use std::collections::HashMap;
use std::time::Duration;

use jobs::Jobs;
use jobs::prelude::*;

use crate::node::Node;
use crate::support::fault::{self, ExecutionLog, wait_within};
use crate::support::{Backend, TestDb, wait_for_state};
use crate::{Block, assert_all_ended, assert_no_overlaps};

backend_tests!(a_runtime_blocked_by_user_code_is_not_rescued);

const SERVER_TIMEOUT: Duration = Duration::from_secs(2);
const BLOCKED: Duration = Duration::from_secs(5);

async fn a_runtime_blocked_by_user_code_is_not_rescued(backend: Backend) {
    let _serial = fault::serial().await;
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let log = ExecutionLog::open(dir.path().join("executions")).unwrap();
    let jobs = Jobs::connect(&db.url).await.unwrap();
    let blocked = Node {
        current_thread: true,
        ..Node::new(2, SERVER_TIMEOUT)
    }
    .spawn(&db.url, &log);
    let id = jobs
        .enqueue(Block {
            millis: u64::try_from(BLOCKED.as_millis()).unwrap(),
        })
        .await
        .unwrap();
    wait_within(
        "the job blocks its node",
        Duration::from_secs(20),
        || async { !log.runs().is_empty() },
    )
    .await;
    let watcher = Node::new(2, SERVER_TIMEOUT).spawn(&db.url, &log);

    wait_for_state(&jobs, id, JobState::Succeeded).await;
    // Long enough for a rescue's re-run to show.
    tokio::time::sleep(SERVER_TIMEOUT * 2).await;
    let info = jobs.get(id).await.unwrap();
    assert_eq!(info.state, JobState::Succeeded, "{:#?}", info.history);
    blocked.stop(Duration::from_secs(20)).await;
    watcher.stop(Duration::from_secs(20)).await;

    let runs = log.runs();
    assert_no_overlaps(&runs, &HashMap::new());
    assert_all_ended(&runs);
    let rescues: Vec<String> = info
        .history
        .iter()
        .filter_map(|event| event.error.as_ref())
        .map(|error| error.message.clone())
        .collect();
    assert!(
        rescues.is_empty(),
        "the blocked node's job was rescued: {rescues:?}"
    );
    assert_eq!(runs.len(), 1, "the job ran {} times: {runs:?}", runs.len());
    assert_eq!(info.attempt, 1);
}
