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
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
        "each migration applied once"
    );
}
