//! A job's creation is said by its row (migration 41): a new job writes no history row
//! for it, and a job an older build stores, with its own row, shows its creation once.

use crate::JobState;
use crate::storage::conformance::{TestDb, at, claim, history_of, id, job};
use crate::storage::{AdminStore, LifecycleStore};

/// The history rows stored for `job`.
async fn stored_rows(storage: &super::PgStorage, job: crate::JobId) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs_event WHERE job_id = $1")
        .bind(job.as_uuid())
        .fetch_one(&storage.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn postgres_enqueue_writes_no_history_row_and_its_history_begins_with_its_creation() {
    let db = TestDb::postgres().await;
    let storage = db.postgres_storage();
    let mut scheduled = job(id(2), "later");
    scheduled.state = JobState::Scheduled;
    scheduled.run_at = at(60);
    scheduled.created_at = at(5);
    // One job alone and several at once take different statements.
    storage.jobs_insert(&[job(id(1), "now")]).await.unwrap();
    storage
        .jobs_insert(&[scheduled, job(id(3), "many")])
        .await
        .unwrap();
    for (job, state, created) in [
        (id(1), JobState::Enqueued, at(0)),
        (id(2), JobState::Scheduled, at(5)),
        (id(3), JobState::Enqueued, at(0)),
    ] {
        assert_eq!(stored_rows(storage, job).await, 0, "{job}");
        assert_eq!(history_of(storage, job).await, [(created, state, 0, None)]);
        let history = storage.job_get(job).await.unwrap().unwrap().history;
        assert!(history[0].error.is_none());
    }
    // A claim's entry comes after the creation's.
    storage.jobs_claim(claim("a", at(1), 1)).await.unwrap();
    let states: Vec<JobState> = history_of(storage, id(1))
        .await
        .into_iter()
        .map(|entry| entry.1)
        .collect();
    assert_eq!(states, [JobState::Enqueued, JobState::Processing]);
}

/// An older build's insert names no `created_state` and writes the row of its creation
/// itself: the history shows it once.
#[tokio::test]
async fn postgres_job_an_older_build_stores_keeps_its_creation_row_read_once() {
    let db = TestDb::postgres().await;
    let storage = db.postgres_storage();
    sqlx::query(
        "WITH inserted AS ( \
             INSERT INTO jobs_job (id, name, display_name, payload, state, queue, priority, \
                 run_at, created_at, updated_at) \
             VALUES ($1, 'old', 'old job', '{}', 'Enqueued', 'default', 0, $2, $2, $2) \
             RETURNING id, state, created_at) \
         INSERT INTO jobs_event (job_id, at, state, attempt) \
         SELECT id, created_at, state, 0 FROM inserted",
    )
    .bind(id(1).as_uuid())
    .bind(at(0))
    .execute(&storage.pool)
    .await
    .unwrap();
    assert_eq!(stored_rows(storage, id(1)).await, 1);
    assert_eq!(
        history_of(storage, id(1)).await,
        [(at(0), JobState::Enqueued, 0, None)]
    );
}
