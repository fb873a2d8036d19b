//! Pausing a queue or one job name, cluster-wide: nothing of it starts until it is
//! resumed, whoever paused it and from whichever process.

use crate::support::{Backend, long_lease_server, setup, start_time, wait_for_state};
use jobs::prelude::*;
use jobs::{Error, Job, PauseKind};

backend_tests!(
    a_paused_queue_starts_nothing_until_it_is_resumed,
    a_paused_job_name_starts_nothing_until_it_is_resumed,
    a_pause_from_another_process_holds_on_a_running_server,
    a_bad_queue_name_is_refused,
);

#[job(queue = "email", display = "Email {user}")]
async fn send_email(user: u32) {
    let _ = user;
}

#[job(display = "Invoice {order}")]
async fn send_invoice(order: u32) {
    let _ = order;
}

#[job(display = "Report {n}")]
async fn build_report(n: u32) {
    let _ = n;
}

async fn a_paused_queue_starts_nothing_until_it_is_resumed(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    jobs.pause_queue("email", "ops@example.com").await.unwrap();
    let paused = jobs.paused().await.unwrap();
    assert_eq!(paused.len(), 1);
    assert_eq!(paused[0].kind, PauseKind::Queue);
    assert_eq!(paused[0].name, "email");
    assert_eq!(paused[0].by, "ops@example.com");
    assert_eq!(paused[0].at, start_time());

    let email = jobs.enqueue(SendEmail { user: 1 }).await.unwrap();
    let report = jobs.enqueue(BuildReport { n: 1 }).await.unwrap();
    let server = long_lease_server(&jobs, &probe).await;
    // Both were due at once: the claim that ran the report left the email.
    wait_for_state(&jobs, report, JobState::Succeeded).await;
    let later = jobs.enqueue(BuildReport { n: 2 }).await.unwrap();
    wait_for_state(&jobs, later, JobState::Succeeded).await;
    assert_eq!(jobs.get(email).await.unwrap().state, JobState::Enqueued);

    assert!(jobs.resume_queue("email").await.unwrap());
    assert!(
        !jobs.resume_queue("email").await.unwrap(),
        "not paused any more"
    );
    wait_for_state(&jobs, email, JobState::Succeeded).await;
    server.shutdown().await;
    assert!(jobs.paused().await.unwrap().is_empty());
}

async fn a_paused_job_name_starts_nothing_until_it_is_resumed(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let name = <SendInvoice as Job>::DESCRIPTOR.name();
    jobs.pause_job(name, "billing-oncall").await.unwrap();
    let invoice = jobs.enqueue(SendInvoice { order: 7 }).await.unwrap();
    let report = jobs.enqueue(BuildReport { n: 1 }).await.unwrap();
    let server = long_lease_server(&jobs, &probe).await;
    wait_for_state(&jobs, report, JobState::Succeeded).await;
    let later = jobs.enqueue(BuildReport { n: 2 }).await.unwrap();
    wait_for_state(&jobs, later, JobState::Succeeded).await;
    assert_eq!(jobs.get(invoice).await.unwrap().state, JobState::Enqueued);
    let paused = jobs.paused().await.unwrap();
    assert_eq!(
        (paused[0].kind, paused[0].name.as_str()),
        (PauseKind::Job, name)
    );

    assert!(jobs.resume_job(name).await.unwrap());
    wait_for_state(&jobs, invoice, JobState::Succeeded).await;
    server.shutdown().await;
}

async fn a_pause_from_another_process_holds_on_a_running_server(backend: Backend) {
    let (db, clock, jobs, probe) = setup(backend).await;
    let server = long_lease_server(&jobs, &probe).await;
    let warm = jobs.enqueue(SendEmail { user: 0 }).await.unwrap();
    wait_for_state(&jobs, warm, JobState::Succeeded).await;
    // An operator's client: another pool on the same database.
    let operator = db.jobs(&clock).await;
    operator.pause_queue("email", "dashboard").await.unwrap();
    // Within a poll interval every server knows; a job enqueued after that waits.
    let marker = jobs.enqueue(BuildReport { n: 1 }).await.unwrap();
    wait_for_state(&jobs, marker, JobState::Succeeded).await;
    crate::support::wait_until("the server saw the pause", || async {
        server.paused_queues().contains(&"email".to_owned())
    })
    .await;
    let email = jobs.enqueue(SendEmail { user: 1 }).await.unwrap();
    let report = jobs.enqueue(BuildReport { n: 2 }).await.unwrap();
    wait_for_state(&jobs, report, JobState::Succeeded).await;
    assert_eq!(jobs.get(email).await.unwrap().state, JobState::Enqueued);
    operator.resume_queue("email").await.unwrap();
    wait_for_state(&jobs, email, JobState::Succeeded).await;
    server.shutdown().await;
}

async fn a_bad_queue_name_is_refused(backend: Backend) {
    let (_db, _clock, jobs, _probe) = setup(backend).await;
    let error = jobs.pause_queue("no spaces here", "ops").await.unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error}");
    assert!(error.to_string().contains("no spaces here"), "{error}");
    let error = jobs.pause_job("", "ops").await.unwrap_err();
    assert!(error.to_string().contains("job name"), "{error}");
    assert!(jobs.paused().await.unwrap().is_empty());
}
