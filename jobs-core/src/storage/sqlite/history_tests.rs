//! The history of a job's creation, said by its row since migration 32: a new job writes
//! no history row, and a job an older build stores gets one from the trigger, read once.

use crate::JobState;
use crate::storage::conformance::{TestDb, at, id, job};
use crate::storage::{AdminStore, LifecycleStore};

/// The history rows stored for `job`.
async fn stored_rows(storage: &super::SqliteStorage, job: crate::JobId) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs_event WHERE job_id = ?")
        .bind(job.to_string())
        .fetch_one(&storage.reader)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_enqueue_writes_no_history_row_and_its_history_begins_with_its_creation() {
    let db = TestDb::sqlite().await;
    let storage = db.sqlite_storage();
    let mut scheduled = job(id(2), "later");
    scheduled.state = JobState::Scheduled;
    scheduled.run_at = at(60);
    scheduled.created_at = at(5);
    storage
        .jobs_insert(&[job(id(1), "now"), scheduled])
        .await
        .unwrap();
    for (job, state, created) in [
        (id(1), JobState::Enqueued, at(0)),
        (id(2), JobState::Scheduled, at(5)),
    ] {
        assert_eq!(stored_rows(storage, job).await, 0, "{job}");
        let history = storage.job_get(job).await.unwrap().unwrap().history;
        assert_eq!(history.len(), 1, "{history:?}");
        let first = &history[0];
        assert_eq!(
            (
                first.at,
                first.state,
                first.attempt,
                first.server.as_deref()
            ),
            (created, state, 0, None)
        );
        assert!(first.error.is_none());
    }
    // A claim's row comes after the entry of the creation.
    storage
        .jobs_claim(crate::storage::conformance::claim("a", at(1), 1))
        .await
        .unwrap();
    let history = storage.job_get(id(1)).await.unwrap().unwrap().history;
    let states: Vec<JobState> = history.iter().map(|entry| entry.state).collect();
    assert_eq!(states, [JobState::Enqueued, JobState::Processing]);
}

/// An older build's insert names no `created_state`: the trigger writes the row of its
/// creation, as before, and the history shows it once.
#[tokio::test]
async fn a_job_an_older_build_stores_keeps_its_creation_row_read_once() {
    let db = TestDb::sqlite().await;
    let storage = db.sqlite_storage();
    let mut writer = storage.writer.lock().await.unwrap();
    sqlx::query(
        "INSERT INTO jobs_job (id, name, display_name, payload, state, queue, priority, \
             run_at, created_at, updated_at) \
         VALUES (?1, 'old', 'old job', '{}', 'Enqueued', 'default', 0, ?2, ?2, ?2)",
    )
    .bind(id(1).to_string())
    .bind(at(0).timestamp_micros())
    .execute(&mut *writer)
    .await
    .unwrap();
    drop(writer);
    assert_eq!(stored_rows(storage, id(1)).await, 1);
    let history = storage.job_get(id(1)).await.unwrap().unwrap().history;
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(
        (history[0].at, history[0].state, history[0].attempt),
        (at(0), JobState::Enqueued, 0)
    );
}
