//! Several builds on one database, as during a rolling deploy: a server claims only the
//! jobs it registers, and a job that no server registers waits for one that does.

use crate::support::{Backend, execute, setup, test_server, wait_for_state};
use std::time::Duration;

use jobs::prelude::*;

#[job(name = "deploy.old_report")]
async fn old_report(State(probe): State<crate::support::Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
}

#[job(name = "deploy.new_invoice")]
async fn new_invoice(State(probe): State<crate::support::Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
}

backend_tests!(
    job_only_a_newer_build_registers_waits_for_it,
    job_no_server_registers_fails_after_fail_unserved_after,
    a_newer_schema_that_only_added_still_works,
    a_newer_schema_this_build_cannot_work_with_is_refused_naming_the_release,
);

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
    assert!(waiting.waiting_for_server);
    let servers = jobs.servers().await.unwrap();
    assert_eq!(servers[0].jobs, Some(vec!["deploy.old_report".to_owned()]));
    assert_eq!(probe.runs(invoice), 0);
    // Listed by name for the Servers page's banner.
    let unserved = jobs.unserved().await.unwrap();
    assert_eq!(
        unserved
            .iter()
            .map(|u| (u.name.as_str(), u.waiting, u.oldest_due))
            .collect::<Vec<_>>(),
        [("deploy.new_invoice", 1, waiting.run_at)]
    );

    let v2 = test_server(&jobs, &probe)
        .only_jobs(["deploy.old_report", "deploy.new_invoice"])
        .start()
        .await
        .unwrap();
    let ran = wait_for_state(&jobs, invoice, JobState::Succeeded).await;
    assert_eq!(ran.attempt, 1);
    assert_eq!(probe.runs(invoice), 1);
    assert!(jobs.unserved().await.unwrap().is_empty());
    v2.shutdown().await;
    v1.shutdown().await;
}

async fn job_no_server_registers_fails_after_fail_unserved_after(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let server = test_server(&jobs, &probe)
        .only_jobs(["deploy.old_report"])
        .server_timeout(Duration::from_secs(30 * 24 * 3600))
        .fail_unserved_after(Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    let invoice = jobs.enqueue(NewInvoice {}).await.unwrap();
    let report = jobs.enqueue(OldReport {}).await.unwrap();
    wait_for_state(&jobs, report, JobState::Succeeded).await;
    clock.advance(Duration::from_secs(3599));
    // Not before its time.
    let later = jobs.enqueue(OldReport {}).await.unwrap();
    wait_for_state(&jobs, later, JobState::Succeeded).await;
    assert_eq!(jobs.get(invoice).await.unwrap().state, JobState::Enqueued);

    clock.advance(Duration::from_secs(2));
    let failed = wait_for_state(&jobs, invoice, JobState::Failed).await;
    server.shutdown().await;
    let message = &failed.errors().next().unwrap().message;
    assert!(
        message.starts_with("no server registers `deploy.new_invoice`"),
        "{message}"
    );
    assert_eq!((failed.attempt, probe.runs(invoice)), (0, 0));
}

/// A process that starts on a current SQLite schema writes nothing: it starts while
/// another process holds the write lock (a long transaction of the app, say).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_on_a_current_sqlite_schema_starts_while_another_writes() {
    let db = crate::support::TestDb::new(Backend::Sqlite).await;
    jobs::Jobs::connect(&db.url)
        .await
        .expect("the first process migrates");
    let mut writer = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut writer)
        .await
        .unwrap();
    let started = tokio::time::timeout(Duration::from_secs(10), jobs::Jobs::connect(&db.url))
        .await
        .expect("a process on a current schema does not wait for the write lock");
    started.expect("it connects");
    sqlx::query("ROLLBACK").execute(&mut writer).await.unwrap();
}

/// A newer build migrated further, adding only: this build starts and works on it.
async fn a_newer_schema_that_only_added_still_works(backend: Backend) {
    let (db, clock, _jobs, probe) = setup(backend).await;
    execute(
        &db,
        "INSERT INTO jobs_migration (version, description) VALUES (9999, 'a newer build adds')",
        &[],
    )
    .await;
    let jobs = db.jobs(&clock).await;
    let server = test_server(&jobs, &probe).start().await.unwrap();
    let report = jobs.enqueue(OldReport {}).await.unwrap();
    wait_for_state(&jobs, report, JobState::Succeeded).await;
    server.shutdown().await;
}

/// A newer build migrated past what this build needs (a contract step): it refuses to
/// start, saying which release it needs.
async fn a_newer_schema_this_build_cannot_work_with_is_refused_naming_the_release(
    backend: Backend,
) {
    let (db, clock, _jobs, _probe) = setup(backend).await;
    execute(
        &db,
        "INSERT INTO jobs_migration (version, description) VALUES (9999, 'a newer build contracts')",
        &[],
    )
    .await;
    execute(
        &db,
        "UPDATE jobs_compat SET needs = 9999, version = 9999, release = '9.9.0'",
        &[],
    )
    .await;
    let error = jobs::Jobs::builder()
        .url(&db.url)
        .clock(clock.clone())
        .connect()
        .await
        .expect_err("refused");
    let message = error.to_string();
    assert!(
        matches!(
            error,
            jobs::Error::SchemaTooNew {
                found: 9999,
                needs: 9999,
                ..
            }
        ),
        "{message}"
    );
    assert!(message.contains("migrated by jobs 9.9.0"), "{message}");
    assert!(
        message.contains("run a build of jobs 9.9.0 or later"),
        "{message}"
    );
}
