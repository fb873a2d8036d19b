//! The jobs stored before the label table existed are found by label once the
//! migration that added it has run: it adds their labels, and on PostgreSQL does so
//! in a script of its own, outside a transaction.

use crate::storage::conformance::{TestDb, by_label, id, labelled_jobs};

#[tokio::test]
async fn postgres_migration_adds_the_labels_of_jobs_stored_before() {
    let db = TestDb::postgres().await;
    labelled_jobs(&db.storage).await;
    let storage = db.postgres_storage();
    sqlx::query("DELETE FROM jobs_job_label")
        .execute(&storage.pool)
        .await
        .unwrap();
    assert!(by_label(&db.storage, "vip").await.is_empty());
    sqlx::raw_sql(include_str!(
        "../../../migrations/postgres/0035_job_labels_backfill.sql"
    ))
    .execute(&storage.pool)
    .await
    .unwrap();
    assert_eq!(by_label(&db.storage, "vip").await, [id(1)]);
    assert_eq!(by_label(&db.storage, "tenant:a").await, [id(1)]);
}
