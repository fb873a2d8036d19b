//! Several builds on one database, as during a rolling deploy: a server claims only the
//! jobs it registers, and a job that no server registers waits for one that does.

use crate::support::{Backend, setup, test_server, wait_for_state};
use jobs::prelude::*;

#[job(name = "deploy.old_report")]
async fn old_report(State(probe): State<crate::support::Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
}

#[job(name = "deploy.new_invoice")]
async fn new_invoice(State(probe): State<crate::support::Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
}

backend_tests!(job_only_a_newer_build_registers_waits_for_it);

/// `only_jobs` narrows what one test binary registers, standing in for two builds: v1
/// knows only the report, v2 the report and the invoice.
async fn job_only_a_newer_build_registers_waits_for_it(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let v1 = test_server(&jobs, &probe)
        .only_jobs(["deploy.old_report"])
        .start()
        .await
        .unwrap();
    let invoice = jobs.enqueue(NewInvoice {}).await.unwrap();
    let report = jobs.enqueue(OldReport {}).await.unwrap();
    // The report, enqueued after the invoice, ran: v1's claims passed the invoice by.
    wait_for_state(&jobs, report, JobState::Succeeded).await;
    let waiting = jobs.get(invoice).await.unwrap();
    assert_eq!((waiting.state, waiting.attempt), (JobState::Enqueued, 0));
    assert_eq!(probe.runs(invoice), 0);

    let v2 = test_server(&jobs, &probe)
        .only_jobs(["deploy.old_report", "deploy.new_invoice"])
        .start()
        .await
        .unwrap();
    let ran = wait_for_state(&jobs, invoice, JobState::Succeeded).await;
    assert_eq!(ran.attempt, 1);
    assert_eq!(probe.runs(invoice), 1);
    v2.shutdown().await;
    v1.shutdown().await;
}
