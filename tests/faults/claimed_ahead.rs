//! SIGKILL of a process holding jobs claimed ahead (prefetched, not started) of a
//! `retries = 0` job type with an `on_failure` continuation: no job that never started
//! ends `Failed`, no `on_failure` runs, and no two executions of a job overlap.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use jobs::{JobId, Jobs};
use sqlx::PgPool;
use tokio::time::Instant;

use crate::node::Node;
use crate::support::fault::{self, ExecutionLog, monotonic_ns};
use crate::support::{Backend, TestDb};
use crate::{Charge, Refund, assert_no_overlaps};

const CHAINS: u32 = 1_000;
const SERVER_TIMEOUT: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_jobs_claimed_ahead_fails_none_of_them() {
    let _serial = fault::serial().await;
    let started = Instant::now();
    let db = TestDb::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let log = ExecutionLog::open(dir.path().join("executions")).unwrap();
    let jobs = Jobs::connect(&db.url).await.unwrap();
    let pool = PgPool::connect(&db.url).await.unwrap();
    let mut charges: Vec<JobId> = Vec::new();
    for n in 0..CHAINS {
        let ids = jobs
            .enqueue(Charge { n })
            .on_failure(Refund { n })
            .await
            .unwrap();
        charges.push(ids[0]);
    }

    // Two workers on short jobs (under a sixteenth of the poll interval): the node claims
    // ahead of them.
    let node = Node::new(2, SERVER_TIMEOUT);
    let mut victim = node.spawn(&db.url, &log);
    let victim_pid = victim.pid();
    let deadline = Instant::now() + Duration::from_secs(30);
    let claimed_ahead = loop {
        let processing: HashSet<uuid::Uuid> =
            sqlx::query_scalar("SELECT id FROM jobs_job WHERE state = 'Processing'")
                .fetch_all(&pool)
                .await
                .unwrap()
                .into_iter()
                .collect();
        let ran: HashSet<uuid::Uuid> = log.runs().iter().map(|run| run.job).collect();
        let waiting = processing.difference(&ran).count();
        if waiting >= 4 {
            break waiting;
        }
        assert!(
            Instant::now() < deadline,
            "the node never held four jobs claimed ahead"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    victim.kill();
    let killed_at = monotonic_ns();
    let at_kill: HashMap<uuid::Uuid, String> =
        sqlx::query_as::<_, (uuid::Uuid, String)>("SELECT id, state FROM jobs_job")
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let started_by_victim: HashSet<uuid::Uuid> = log.runs().iter().map(|run| run.job).collect();
    let never_started: Vec<uuid::Uuid> = charges
        .iter()
        .map(|id| id.as_uuid())
        .filter(|id| at_kill[id] == "Processing" && !started_by_victim.contains(id))
        .collect();
    assert!(
        !never_started.is_empty(),
        "no job was claimed ahead at the kill"
    );

    // Another node rescues what the dead one held and drains the rest.
    let rescuer = node.spawn(&db.url, &log);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs_job WHERE id = ANY($1) \
                 AND state NOT IN ('Succeeded', 'Failed')",
        )
        .bind(charges.iter().map(|id| id.as_uuid()).collect::<Vec<_>>())
        .fetch_one(&pool)
        .await
        .unwrap();
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} charges not finished 60 s after the kill"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Time for a continuation to start, had any been released.
    tokio::time::sleep(Duration::from_secs(1)).await;
    rescuer.stop(Duration::from_secs(20)).await;

    let failed: Vec<(uuid::Uuid, Option<String>)> = sqlx::query_as(
        "SELECT id, last_error FROM jobs_job WHERE id = ANY($1) AND state = 'Failed'",
    )
    .bind(&never_started)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(
        failed.is_empty(),
        "{} of the {} jobs claimed ahead that never started ended Failed, e.g. {:?}",
        failed.len(),
        never_started.len(),
        &failed[..failed.len().min(2)]
    );
    let runs = log.runs();
    let refunds: Vec<_> = runs.iter().filter(|run| run.kind == "refund").collect();
    assert!(
        refunds.is_empty(),
        "{} on_failure continuations ran: {:?}",
        refunds.len(),
        &refunds[..refunds.len().min(5)]
    );
    let all_failed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs_job WHERE id = ANY($1) AND state = 'Failed'")
            .bind(charges.iter().map(|id| id.as_uuid()).collect::<Vec<_>>())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(all_failed, 0, "charges ended Failed after the kill");
    assert_no_overlaps(&runs, &HashMap::from([(victim_pid, killed_at)]));
    println!(
        "{CHAINS} charges; killed a node holding {claimed_ahead}+ claimed ahead ({} never \
         started at the kill); {} executions; {:.1?}",
        never_started.len(),
        runs.len(),
        started.elapsed()
    );
}
