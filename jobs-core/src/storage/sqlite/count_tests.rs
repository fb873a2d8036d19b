//! The jobs stored before the counters existed are counted once the migration that
//! added them has run.

use crate::storage::conformance::{TestDb, at, claim, id, job};
use crate::storage::{AdminStore, LifecycleStore};

#[tokio::test]
async fn sqlite_migration_counts_the_jobs_stored_before() {
    let db = TestDb::sqlite().await;
    let storage = db.sqlite_storage();
    // The schema before the counters: no triggers, no counts.
    let mut writer = storage.writer.lock().await.unwrap();
    sqlx::raw_sql(
        "DROP TRIGGER jobs_job_counted_in; DROP TRIGGER jobs_job_counted_moved; \
         DROP TRIGGER jobs_job_counted_out; DROP TABLE jobs_state_count",
    )
    .execute(&mut *writer)
    .await
    .unwrap();
    drop(writer);
    storage
        .jobs_insert(&[job(id(1), "old"), job(id(2), "old"), job(id(3), "old")])
        .await
        .unwrap();
    storage.jobs_claim(claim("a", at(1), 1)).await.unwrap();
    let mut writer = storage.writer.lock().await.unwrap();
    sqlx::raw_sql(include_str!(
        "../../../migrations/sqlite/0030_state_counts.sql"
    ))
    .execute(&mut *writer)
    .await
    .unwrap();
    drop(writer);
    storage.jobs_insert(&[job(id(4), "new")]).await.unwrap();
    storage.jobs_claim(claim("a", at(2), 1)).await.unwrap();
    let expected = storage.jobs_count_scanned().await;
    assert_eq!(expected.iter().map(|(_, n)| n).sum::<u64>(), 4);
    assert_eq!(storage.jobs_count().await.unwrap(), expected);
}
