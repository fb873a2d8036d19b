//! Many nodes booting at once on one fresh PostgreSQL database: each runs migrations,
//! the first applies them, the others wait and find them applied.

#![cfg(feature = "postgres")]

use crate::support::{Backend, TestDb};
use jobs::Jobs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_migrate_one_database_at_once() {
    let db = TestDb::new(Backend::Postgres).await;
    let nodes: Vec<_> = (0..8)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { Jobs::connect(&url).await })
        })
        .collect();
    for node in nodes {
        node.await
            .unwrap()
            .expect("every client connects and migrates");
    }
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM jobs_migration ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        versions,
        [
            1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
            25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39
        ],
        "each migration applied once"
    );
}

/// A node that starts on a current schema takes no lock: it starts while another holds
/// the migration lock (a long migration in progress elsewhere, say), and holds up nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_a_current_schema_starts_without_the_migration_lock() {
    let db = TestDb::new(Backend::Postgres).await;
    Jobs::connect(&db.url)
        .await
        .expect("the first node migrates");
    let mut holder = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    // The key `jobs` migrates under ("jobs_mig").
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(0x6a6f_6273_5f6d_6967_i64)
        .execute(&mut holder)
        .await
        .unwrap();
    let started = tokio::time::timeout(std::time::Duration::from_secs(10), Jobs::connect(&db.url))
        .await
        .expect("a node on a current schema does not wait for the migration lock");
    started.expect("it connects");
    sqlx::Connection::close(holder).await.unwrap();
}
