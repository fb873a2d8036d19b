//! The jobs stored before the label table existed are found by label once the
//! migration that added it has run: it adds their labels, and on PostgreSQL does so
//! in a script of its own, outside a transaction.

use crate::storage::conformance::{TestDb, id, job};
use crate::storage::{AdminStore, AnyStorage, LifecycleStore, NewJob};
use crate::{JobId, JobQuery};

/// A job labelled `vip` and `tenant:a`, and one without labels.
async fn stored_before(storage: &AnyStorage) {
    storage
        .jobs_insert(&[
            NewJob {
                labels: vec!["vip".to_owned(), "tenant:a".to_owned()],
                ..job(id(1), "labelled")
            },
            job(id(2), "plain"),
        ])
        .await
        .unwrap();
}

async fn by_label(storage: &AnyStorage, label: &str) -> Vec<JobId> {
    let page = storage
        .jobs_list(&JobQuery::default().label(label))
        .await
        .unwrap();
    page.iter().map(|job| job.id).collect()
}

#[tokio::test]
async fn sqlite_migration_adds_the_labels_of_jobs_stored_before() {
    let db = TestDb::sqlite().await;
    stored_before(&db.storage).await;
    let AnyStorage::Sqlite(storage) = &db.storage else {
        unreachable!("a SQLite test database");
    };
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
