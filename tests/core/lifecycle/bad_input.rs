//! Bad input fails one attempt or one job with a clear message, never a worker: a panic,
//! a payload that no longer decodes, a state the server was not given, an error too
//! large to store. A name this binary does not register is no bad input: it waits for
//! a server that registers it.

use super::*;

backend_tests!(
    panic_fails_one_attempt_not_the_worker,
    backtrace_capture_can_be_turned_off,
    unknown_job_name_waits_for_a_server_that_registers_it,
    undecodable_payload_fails_without_retry,
    missing_state_fails_with_a_clear_message,
    huge_error_is_capped,
);

async fn panic_fails_one_attempt_not_the_worker(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let server = test_server(&jobs, &probe)
        .worker_count(1)
        .server_timeout(Duration::from_secs(30 * 24 * 3600))
        .start()
        .await
        .unwrap();
    let id = jobs.enqueue(Panics {}).await.unwrap();
    let info = wait_for_job(&jobs, id, "waits for a retry", |info| {
        info.state == JobState::Scheduled && info.attempt == 1
    })
    .await;
    // Where it panicked, as the panic hook saw it.
    let line = PANIC_LINE.load(std::sync::atomic::Ordering::Relaxed);
    let error = info.history.last().unwrap().error.clone().unwrap();
    assert_eq!(
        error.message,
        format!("panicked at tests/core/lifecycle/mod.rs:{line}:5: boom in attempt 1")
    );
    // Captured in the hook, while the job's frames were on the stack.
    let backtrace = error.backtrace.expect("a backtrace of the panic");
    // It starts at the job, not in the panic machinery, and leaves the job server's and
    // the runtime's frames out.
    let first = backtrace.lines().next().unwrap_or_default();
    assert!(
        first.contains("lifecycle::panics"),
        "the job fn is the first frame:\n{backtrace}"
    );
    assert!(
        !backtrace.contains("tokio::runtime"),
        "no runtime frames:\n{backtrace}"
    );
    clock.set(info.run_at);
    let info = wait_for_state(&jobs, id, JobState::Failed).await;
    assert_eq!(info.attempt, 2);

    // The single worker survived both panics and runs the next job.
    let next = jobs
        .enqueue(Record {
            label: "after the panic".into(),
        })
        .await
        .unwrap();
    wait_for_state(&jobs, next, JobState::Succeeded).await;
    server.shutdown().await;
}

async fn backtrace_capture_can_be_turned_off(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let server = test_server(&jobs, &probe)
        .worker_count(1)
        .capture_backtraces(false)
        .start()
        .await
        .unwrap();
    let id = jobs.enqueue(Panics {}).await.unwrap();
    let info = wait_for_job(&jobs, id, "waits for a retry", |info| {
        info.state == JobState::Scheduled && info.attempt == 1
    })
    .await;
    let error = info.history.last().unwrap().error.clone().unwrap();
    assert!(
        error
            .message
            .starts_with("panicked at tests/core/lifecycle/mod.rs:")
    );
    assert_eq!(error.backtrace, None, "capture is off");
    server.shutdown().await;
}

async fn unknown_job_name_waits_for_a_server_that_registers_it(backend: Backend) {
    let (db, _clock, jobs, probe) = setup(backend).await;
    let id = jobs
        .enqueue(Record {
            label: "renamed".into(),
        })
        .await
        .unwrap();
    tamper(&db, id, "name", "billing::send_invoice_v1").await;
    let server = server(&jobs, &probe).await;
    // Enqueued after it, run: the claims passed the unknown name by.
    let later = jobs
        .enqueue(Record {
            label: "later".into(),
        })
        .await
        .unwrap();
    wait_for_state(&jobs, later, JobState::Succeeded).await;
    let info = jobs.get(id).await.unwrap();
    server.shutdown().await;
    assert_eq!((info.state, info.attempt), (JobState::Enqueued, 0));
    assert_eq!(probe.runs(id), 0);
}

async fn undecodable_payload_fails_without_retry(backend: Backend) {
    let (db, _clock, jobs, probe) = setup(backend).await;
    let id = jobs
        .enqueue(Record {
            label: "changed".into(),
        })
        .await
        .unwrap();
    tamper(&db, id, "payload", r#"{"title": 42}"#).await;
    let server = server(&jobs, &probe).await;
    let info = wait_for_state(&jobs, id, JobState::Failed).await;
    server.shutdown().await;
    assert_eq!(info.attempt, 1, "not retried blindly");
    let message = &info.errors().next().unwrap().message;
    assert!(message.contains("does not decode"), "{message}");
    assert!(message.contains("missing field `label`"), "{message}");
    assert_eq!(probe.runs(id), 0);
}

/// SQLite stores whatever bytes a hand-written statement puts in a `TEXT` column: a
/// payload that is not UTF-8 fails its job alone, and the jobs claimed with it run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_that_is_not_utf8_fails_its_job_alone_on_sqlite() {
    let (db, _clock, jobs, probe) = setup(Backend::Sqlite).await;
    let good = jobs
        .enqueue(Record {
            label: "good".into(),
        })
        .await
        .unwrap();
    let bad = jobs
        .enqueue(Record {
            label: "bad".into(),
        })
        .await
        .unwrap();
    let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    sqlx::query("UPDATE jobs_job SET payload = CAST(X'FF7B' AS TEXT) WHERE id = ?")
        .bind(bad.to_string())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let server = server(&jobs, &probe).await;
    wait_for_state(&jobs, good, JobState::Succeeded).await;
    let info = wait_for_state(&jobs, bad, JobState::Failed).await;
    server.shutdown().await;
    let message = &info.errors().next().unwrap().message;
    assert!(message.contains("does not decode"), "{message}");
    assert_eq!(probe.runs(bad), 0);
}

async fn missing_state_fails_with_a_clear_message(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let server = server(&jobs, &probe).await;
    let id = jobs.enqueue(NeedsOtherState {}).await.unwrap();
    let info = wait_for_state(&jobs, id, JobState::Failed).await;
    server.shutdown().await;
    let message = &info.errors().next().unwrap().message;
    assert!(
        message.contains("State<alloc::sync::Arc<core::lifecycle::Unregistered>>"),
        "{message}"
    );
    assert!(message.contains(".state(value)"), "{message}");
}

async fn huge_error_is_capped(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let server = server(&jobs, &probe).await;
    let id = jobs.enqueue(HugeError { size: 5_000_000 }).await.unwrap();
    let info = wait_for_state(&jobs, id, JobState::Failed).await;
    server.shutdown().await;
    let message = &info.errors().next().unwrap().message;
    assert!(message.len() < 20_000, "stored {} bytes", message.len());
    assert!(
        message.ends_with("[cut: 5000000 bytes in all]"),
        "{}",
        &message[message.len() - 40..]
    );
}
