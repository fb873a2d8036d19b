//! The jobs stored before the label table existed are found by label once the
//! migration that added it has run: it adds their labels, and on PostgreSQL does so
//! in a script of its own, outside a transaction.

use crate::storage::conformance::{TestDb, by_label, id, labelled_jobs};

#[tokio::test]
async fn sqlite_migration_adds_the_labels_of_jobs_stored_before() {
    let db = TestDb::sqlite().await;
    labelled_jobs(&db.storage).await;
    let storage = db.sqlite_storage();
    let mut writer = storage.writer.lock().await.unwrap();
    sqlx::query("DELETE FROM jobs_job_label")
        .execute(&mut *writer)
        .await
        .unwrap();
    drop(writer);
    assert!(by_label(&db.storage, "vip").await.is_empty());
    let mut writer = storage.writer.lock().await.unwrap();
    sqlx::raw_sql(include_str!(
        "../../../migrations/sqlite/0027_job_labels.sql"
    ))
    .execute(&mut *writer)
    .await
    .unwrap();
    drop(writer);
    assert_eq!(by_label(&db.storage, "vip").await, [id(1)]);
    assert_eq!(by_label(&db.storage, "tenant:a").await, [id(1)]);
}
