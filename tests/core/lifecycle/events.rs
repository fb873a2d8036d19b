//! Durable waits for events: a waiting job holds no worker, resumes on its event with
//! the event's payload (or at its deadline without one), sees an event sent before it
//! began to wait, keeps what it got across a retry, and survives a restart.

use std::time::Duration;

use crate::support::{
    Backend, LONG_LEASE, Probe, setup, start_time, test_server, wait_for_job, wait_for_state,
};
use jobs::prelude::*;
use jobs::{JobInfo, JobServer, Jobs};
use serde::{Deserialize, Serialize};

backend_tests!(
    a_waiting_job_holds_no_worker_and_resumes_on_its_event_with_the_payload,
    a_wait_times_out_when_its_deadline_passes_without_the_event,
    an_event_sent_just_before_the_wait_began_is_not_lost,
    a_retry_after_the_event_gets_the_same_payload_without_waiting_again,
    a_wait_survives_a_restart_of_every_server,
);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Approval {
    by: String,
}

const TWO_DAYS: Duration = Duration::from_secs(2 * 86_400);

/// Announces a draft once a person approved it, or says that nobody did in two days.
/// With `fail_once`, the first attempt after the wait fails.
#[job(retries = 2, backoff = "fixed(30s)")]
async fn announce(
    State(probe): State<Probe>,
    ctx: JobContext,
    draft: u32,
    fail_once: bool,
) -> anyhow::Result<()> {
    let summary: String = ctx
        .step("summarize", || async {
            probe.note(format!("summarized {draft}"));
            Ok::<_, anyhow::Error>(format!("summary-{draft}"))
        })
        .await?;
    let approval = ctx
        .wait_for_event::<Approval>("approval", &format!("draft-{draft}"), TWO_DAYS)
        .await?;
    if fail_once && ctx.attempt() == 1 {
        anyhow::bail!("the announcement service is down");
    }
    let attempt = ctx.attempt();
    match approval {
        Some(approval) => probe.note(format!(
            "{summary} approved by {} at attempt {attempt}",
            approval.by
        )),
        None => probe.note(format!("{summary} not approved at attempt {attempt}")),
    }
    Ok(())
}

async fn server(jobs: &Jobs, probe: &Probe, workers: usize) -> JobServer {
    test_server(jobs, probe)
        .worker_count(workers)
        .server_timeout(LONG_LEASE)
        .start()
        .await
        .unwrap()
}

fn approval(by: &str) -> Approval {
    Approval { by: by.to_owned() }
}

/// Waits until job `id` waits for its event, and returns it.
async fn waiting(jobs: &Jobs, id: JobId) -> JobInfo {
    wait_for_job(jobs, id, "waits for its event", |info| {
        info.waiting_for_event.is_some()
    })
    .await
}

async fn a_waiting_job_holds_no_worker_and_resumes_on_its_event_with_the_payload(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    // One worker: the second job could not run while the first held it.
    let server = server(&jobs, &probe, 1).await;
    let id = jobs
        .enqueue(Announce {
            draft: 1,
            fail_once: false,
        })
        .await
        .unwrap();
    let info = waiting(&jobs, id).await;
    assert_eq!(info.state, JobState::Scheduled);
    assert_eq!(info.attempt, 0, "a wait is not an attempt");
    let awaited = info.waiting_for_event.unwrap();
    assert_eq!(
        (awaited.name.as_str(), awaited.key.as_str()),
        ("approval", "draft-1")
    );
    assert_eq!(awaited.until, start_time() + chrono::Duration::days(2));
    assert_eq!(info.run_at, awaited.until);
    let other = jobs
        .enqueue(Announce {
            draft: 2,
            fail_once: false,
        })
        .await
        .unwrap();
    waiting(&jobs, other).await;

    let resumed = jobs
        .send_event("approval", "draft-1", &approval("ada"))
        .await
        .unwrap();
    assert_eq!(resumed, 1);
    let done = wait_for_state(&jobs, id, JobState::Succeeded).await;
    assert_eq!(
        done.attempt, 1,
        "the run after the wait is the first attempt"
    );
    assert_eq!(done.waiting_for_event, None);
    assert_eq!(jobs.get(other).await.unwrap().state, JobState::Scheduled);
    assert_eq!(
        jobs.send_event("approval", "draft-2", &approval("bob"))
            .await
            .unwrap(),
        1
    );
    wait_for_state(&jobs, other, JobState::Succeeded).await;
    server.shutdown().await;
    let mut notes = probe.notes();
    notes.sort();
    assert_eq!(
        notes,
        [
            "summarized 1",
            "summarized 2",
            "summary-1 approved by ada at attempt 1",
            "summary-2 approved by bob at attempt 1",
        ],
        "the step before the wait ran once"
    );
}

async fn a_wait_times_out_when_its_deadline_passes_without_the_event(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let server = server(&jobs, &probe, 2).await;
    let id = jobs
        .enqueue(Announce {
            draft: 3,
            fail_once: false,
        })
        .await
        .unwrap();
    waiting(&jobs, id).await;
    // Another key's event does not end this wait.
    assert_eq!(
        jobs.send_event("approval", "draft-4", &approval("ada"))
            .await
            .unwrap(),
        0
    );
    clock.advance(TWO_DAYS - Duration::from_secs(1));
    assert_eq!(jobs.get(id).await.unwrap().state, JobState::Scheduled);
    clock.advance(Duration::from_secs(1));
    wait_for_state(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(
        probe.notes(),
        ["summarized 3", "summary-3 not approved at attempt 1"]
    );
}

async fn an_event_sent_just_before_the_wait_began_is_not_lost(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    assert_eq!(
        jobs.send_event("approval", "draft-5", &approval("ada"))
            .await
            .unwrap(),
        0,
        "nobody waits yet: the event is kept"
    );
    let id = jobs
        .enqueue(Announce {
            draft: 5,
            fail_once: false,
        })
        .await
        .unwrap();
    let server = server(&jobs, &probe, 1).await;
    let done = wait_for_state(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;
    assert!(
        done.history
            .iter()
            .all(|entry| entry.state != JobState::Scheduled),
        "it never waited: {:#?}",
        done.history
    );
    assert_eq!(
        probe.notes(),
        ["summarized 5", "summary-5 approved by ada at attempt 1"]
    );
}

async fn a_retry_after_the_event_gets_the_same_payload_without_waiting_again(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let server = server(&jobs, &probe, 1).await;
    let id = jobs
        .enqueue(Announce {
            draft: 6,
            fail_once: true,
        })
        .await
        .unwrap();
    waiting(&jobs, id).await;
    jobs.send_event("approval", "draft-6", &approval("ada"))
        .await
        .unwrap();
    let failed = wait_for_job(&jobs, id, "fails once after the event", |info| {
        info.last_error.is_some() && info.state == JobState::Scheduled
    })
    .await;
    assert_eq!(failed.waiting_for_event, None, "a retry waits for no event");
    // A later event of the same key is not what the retry sees.
    assert_eq!(
        jobs.send_event("approval", "draft-6", &approval("mallory"))
            .await
            .unwrap(),
        0
    );
    clock.advance(Duration::from_secs(30));
    let done = wait_for_state(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(done.attempt, 2);
    assert_eq!(
        probe.notes(),
        ["summarized 6", "summary-6 approved by ada at attempt 2"]
    );
}

async fn a_wait_survives_a_restart_of_every_server(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let first = server(&jobs, &probe, 2).await;
    let id = jobs
        .enqueue(Announce {
            draft: 7,
            fail_once: false,
        })
        .await
        .unwrap();
    waiting(&jobs, id).await;
    first.shutdown().await;

    // A day later, with no server running, the approval comes.
    clock.advance(Duration::from_secs(86_400));
    assert_eq!(
        jobs.send_event("approval", "draft-7", &approval("ada"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(jobs.get(id).await.unwrap().state, JobState::Enqueued);
    let second = server(&jobs, &probe, 2).await;
    wait_for_state(&jobs, id, JobState::Succeeded).await;
    second.shutdown().await;
    assert_eq!(
        probe.notes(),
        ["summarized 7", "summary-7 approved by ada at attempt 1"]
    );
}
