//! Durable sleep: a job that sleeps holds no worker, survives a restart of every
//! server, and goes on after the sleep where it stopped.

use std::time::Duration;

use crate::support::{
    Backend, LONG_LEASE, Probe, setup, test_server, wait_for_job, wait_for_state,
};
use jobs::prelude::*;
use jobs::{JobServer, Jobs};

backend_tests!(
    a_sleeping_job_holds_no_worker_and_resumes_after_its_time,
    a_sleep_survives_a_restart_of_every_server,
);

/// Sends a follow-up three days after the first message, unless answered.
#[job(retries = 2)]
async fn follow_up(State(probe): State<Probe>, ctx: JobContext, user: u32) -> anyhow::Result<()> {
    let sent: String = ctx
        .step("first message", || async {
            probe.note(format!("first message to {user}"));
            Ok::<_, anyhow::Error>(format!("message-{user}"))
        })
        .await?;
    ctx.sleep("three days", Duration::from_secs(3 * 86_400))
        .await?;
    probe.note(format!("follow-up on {sent} at attempt {}", ctx.attempt()));
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

async fn a_sleeping_job_holds_no_worker_and_resumes_after_its_time(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    // One worker: the other job could not run while the first held it.
    let server = server(&jobs, &probe, 1).await;
    let id = jobs.enqueue(FollowUp { user: 7 }).await.unwrap();
    let sleeping = wait_for_job(&jobs, id, "sleeps", |info| {
        info.state == JobState::Scheduled
    })
    .await;
    assert_eq!(
        sleeping.run_at,
        crate::support::start_time() + chrono::Duration::days(3)
    );
    assert_eq!(sleeping.attempt, 0, "a sleep is not an attempt");
    let note = sleeping.history.last().unwrap().error.as_ref().unwrap();
    assert!(
        note.message.contains("sleeps until") && note.message.contains("three days"),
        "{}",
        note.message
    );
    let other = jobs.enqueue(FollowUp { user: 8 }).await.unwrap();
    wait_for_job(&jobs, other, "sleeps too", |info| {
        info.state == JobState::Scheduled
    })
    .await;

    clock.advance(Duration::from_secs(3 * 86_400));
    let done = wait_for_state(&jobs, id, JobState::Succeeded).await;
    wait_for_state(&jobs, other, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(
        done.attempt, 1,
        "the run after the sleep is the first attempt"
    );
    let mut notes = probe.notes();
    notes.sort();
    assert_eq!(
        notes,
        [
            "first message to 7",
            "first message to 8",
            "follow-up on message-7 at attempt 1",
            "follow-up on message-8 at attempt 1",
        ],
        "the step before the sleep ran once"
    );
}

async fn a_sleep_survives_a_restart_of_every_server(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let first = server(&jobs, &probe, 4).await;
    let id = jobs.enqueue(FollowUp { user: 9 }).await.unwrap();
    wait_for_job(&jobs, id, "sleeps", |info| {
        info.state == JobState::Scheduled
    })
    .await;
    first.shutdown().await;

    clock.advance(Duration::from_secs(2 * 86_400));
    let second = server(&jobs, &probe, 4).await;
    // Run early by an operator's requeue, it goes back to sleep until its own time,
    // without sending the first message again.
    assert!(jobs.requeue(id).await.unwrap());
    let until = crate::support::start_time() + chrono::Duration::days(3);
    let again = wait_for_job(&jobs, id, "sleeps again", |info| {
        info.state == JobState::Scheduled && info.history.len() >= 6
    })
    .await;
    assert_eq!(again.run_at, until);
    clock.advance(Duration::from_secs(86_400));
    wait_for_state(&jobs, id, JobState::Succeeded).await;
    second.shutdown().await;
    assert_eq!(
        probe.notes(),
        ["first message to 9", "follow-up on message-9 at attempt 1"]
    );
}
