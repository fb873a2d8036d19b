//! A payload that does not decode for this build, during a rolling deploy: while a live
//! server of another build runs the job, it is put back for that server, uncharged,
//! with the decode error in its history; with no such server, or once the job is older
//! than `fail_unserved_after`, it fails as any payload that does not decode.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs::prelude::*;
use jobs::{Clock, Job, JobId, JobInfo, Jobs};

use crate::support::{
    Backend, LONG_LEASE, Probe, TestDb, execute, setup, tamper, test_server, wait_for_job,
    wait_for_state,
};

backend_tests!(
    a_payload_another_build_decodes_is_put_back_for_it,
    a_put_back_job_fails_once_older_than_fail_unserved_after,
    a_server_of_the_same_build_fails_it_at_once,
);

#[job(name = "skew.record")]
async fn record(State(probe): State<Probe>, ctx: JobContext, label: String) {
    let _ = label;
    let _run = probe.start(ctx.id());
}

/// The shape this build gives `skew.record`'s data.
fn our_shape() -> &'static str {
    <Record as Job>::DESCRIPTOR.shape_setting()
}

/// A live server of another build, as its heartbeat leaves it: it runs `skew.record`
/// with data of `shape`.
async fn another_server(db: &TestDb, shape: &str, heartbeat: DateTime<Utc>) {
    let heartbeat = match db.backend {
        Backend::Sqlite => heartbeat.timestamp_micros().to_string(),
        #[cfg(feature = "postgres")]
        Backend::Postgres => format!("'{}'", heartbeat.to_rfc3339()),
    };
    let shapes = format!(r#"{{"skew.record": "{shape}"}}"#);
    let sql = format!(
        "INSERT INTO jobs_server (id, name, host, pid, workers, running, started_at, \
             heartbeat_at, jobs, shapes) \
         VALUES ('v2', 'v2', 'other-host', 7, 8, 0, {heartbeat}, {heartbeat}, $1, $2)"
    );
    execute(db, &sql, &[r#"["skew.record"]"#, &shapes]).await;
}

/// A job of `skew.record` whose stored payload this build cannot decode.
async fn undecodable(db: &TestDb, jobs: &Jobs) -> JobId {
    let id = jobs.enqueue(Record { label: "v2".into() }).await.unwrap();
    tamper(db, id, "payload", r#"{"title": 42}"#).await;
    id
}

async fn put_back(jobs: &Jobs, id: JobId) -> JobInfo {
    wait_for_job(jobs, id, "is put back", |info| {
        info.state == JobState::Scheduled
            && info.history.iter().any(|entry| {
                entry
                    .error
                    .as_ref()
                    .is_some_and(|error| error.message.starts_with("put back for a server"))
            })
    })
    .await
}

async fn a_payload_another_build_decodes_is_put_back_for_it(backend: Backend) {
    let (db, clock, jobs, probe) = setup(backend).await;
    let id = undecodable(&db, &jobs).await;
    another_server(&db, "00000000000000ff", clock.now()).await;
    let server = test_server(&jobs, &probe)
        .server_timeout(LONG_LEASE)
        .start()
        .await
        .unwrap();
    let info = put_back(&jobs, id).await;
    assert_eq!(info.attempt, 0, "not charged an attempt");
    let note = info
        .history
        .iter()
        .find_map(|entry| entry.error.as_ref().map(|error| error.message.clone()))
        .unwrap();
    assert!(note.contains("does not decode"), "{note}");
    assert!(note.contains("missing field `label`"), "{note}");
    // Due again after five poll intervals, for the other build to claim first.
    assert_eq!(info.run_at, clock.now() + Duration::from_secs(1));

    // The other build is gone: the next claim finds no server that might decode it.
    execute(&db, "DELETE FROM jobs_server WHERE id = 'v2'", &[]).await;
    clock.set(info.run_at);
    let failed = wait_for_state(&jobs, id, JobState::Failed).await;
    server.shutdown().await;
    assert_eq!(failed.attempt, 1);
    let message = &failed.errors().next().unwrap().message;
    assert!(message.contains("does not decode"), "{message}");
    assert_eq!(probe.runs(id), 0);
}

async fn a_put_back_job_fails_once_older_than_fail_unserved_after(backend: Backend) {
    let (db, clock, jobs, probe) = setup(backend).await;
    let id = undecodable(&db, &jobs).await;
    another_server(&db, "00000000000000ff", clock.now()).await;
    let server = test_server(&jobs, &probe)
        .server_timeout(LONG_LEASE)
        .fail_unserved_after(Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    put_back(&jobs, id).await;
    // The other build never takes it: an hour on, it counts as a failure.
    clock.advance(Duration::from_secs(3601));
    let failed = wait_for_state(&jobs, id, JobState::Failed).await;
    server.shutdown().await;
    assert_eq!(failed.attempt, 1);
    assert!(
        failed
            .errors()
            .next()
            .unwrap()
            .message
            .contains("does not decode")
    );
}

async fn a_server_of_the_same_build_fails_it_at_once(backend: Backend) {
    let (db, clock, jobs, probe) = setup(backend).await;
    let id = undecodable(&db, &jobs).await;
    // Another replica of this build cannot decode it either.
    another_server(&db, our_shape(), clock.now()).await;
    let server = test_server(&jobs, &probe)
        .server_timeout(LONG_LEASE)
        .start()
        .await
        .unwrap();
    let failed = wait_for_state(&jobs, id, JobState::Failed).await;
    server.shutdown().await;
    assert_eq!(failed.attempt, 1);
    assert_eq!(
        failed.history.len(),
        3,
        "enqueued, processing, failed: {:#?}",
        failed.history
    );
}
