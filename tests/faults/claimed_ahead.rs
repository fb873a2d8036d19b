//! SIGKILL of a process holding jobs claimed ahead (prefetched, not started) of a
//! `retries = 0` job type with an `on_failure` continuation: no job that never started
//! ends `Failed`, no `on_failure` runs, and no two executions of a job overlap.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use jobs::prelude::*;
use jobs::{JobQuery, Jobs};
use tokio::time::Instant;

use crate::node::Node;
use crate::support::fault::{self, ExecutionLog, monotonic_ns};
use crate::support::{Backend, TestDb};
use crate::{Charge, Refund, assert_no_overlaps};

backend_tests!(sigkill_with_jobs_claimed_ahead_fails_none_of_them);

const CHAINS: u32 = 1_000;
const SERVER_TIMEOUT: Duration = Duration::from_secs(1);

async fn sigkill_with_jobs_claimed_ahead_fails_none_of_them(backend: Backend) {
    let _serial = fault::serial().await;
    let started = Instant::now();
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let log = ExecutionLog::open(dir.path().join("executions")).unwrap();
    let jobs = Jobs::connect(&db.url).await.unwrap();
    let mut charges: HashSet<uuid::Uuid> = HashSet::new();
    for n in 0..CHAINS {
        let ids = jobs
            .enqueue(Charge { n })
            .on_failure(Refund { n })
            .await
            .unwrap();
        charges.insert(ids[0].as_uuid());
    }

    // Two workers on short jobs (under a sixteenth of the poll interval): the node claims
    // ahead of them.
    let node = Node::new(2, SERVER_TIMEOUT);
    let mut victim = node.spawn(&db.url, &log);
    let victim_pid = victim.pid();
    let deadline = Instant::now() + Duration::from_secs(30);
    let claimed_ahead = loop {
        let processing = ids_in(&jobs, JobState::Processing).await;
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
    let at_kill = ids_in(&jobs, JobState::Processing).await;
    let started_by_victim: HashSet<uuid::Uuid> = log.runs().iter().map(|run| run.job).collect();
    let never_started: Vec<uuid::Uuid> = at_kill.difference(&started_by_victim).copied().collect();
    assert!(
        !never_started.is_empty(),
        "no job was claimed ahead at the kill"
    );

    // Another node rescues what the dead one held and drains the rest.
    let rescuer = node.spawn(&db.url, &log);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut open = 0;
        for state in [
            JobState::Enqueued,
            JobState::Scheduled,
            JobState::Processing,
        ] {
            open += ids_in(&jobs, state).await.intersection(&charges).count();
        }
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

    let mut failed = Vec::new();
    for id in &never_started {
        let info = jobs.get((*id).into()).await.unwrap();
        if info.state == JobState::Failed {
            failed.push((*id, info.last_error));
        }
    }
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
    let failed_charges = ids_in(&jobs, JobState::Failed)
        .await
        .intersection(&charges)
        .count();
    assert_eq!(failed_charges, 0, "charges ended Failed after the kill");
    assert_no_overlaps(&runs, &HashMap::from([(victim_pid, killed_at)]));
    println!(
        "{backend:?}: {CHAINS} charges; killed a node holding {claimed_ahead}+ claimed ahead \
         ({} never started at the kill); {} executions; {:.1?}",
        never_started.len(),
        runs.len(),
        started.elapsed()
    );
}

/// The ids of every job in `state`.
async fn ids_in(jobs: &Jobs, state: JobState) -> HashSet<uuid::Uuid> {
    let mut ids = HashSet::new();
    let mut query = JobQuery::state(state).limit(1_000);
    loop {
        let page = jobs.list(query.clone()).await.unwrap();
        ids.extend(page.items.iter().map(|job| job.id.as_uuid()));
        match page.next {
            Some(after) => query = query.after(after),
            None => return ids,
        }
    }
}
