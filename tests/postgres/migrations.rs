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
            25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42
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

/// The options of `jobs_job` in `pg_class.reloptions`, as `name=value`, sorted.
async fn job_table_options(pool: &sqlx::PgPool) -> Vec<String> {
    let mut options: Vec<String> = sqlx::query_scalar(
        "SELECT unnest(reloptions) FROM pg_class WHERE oid = to_regclass('jobs_job')",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    options.sort();
    options
}

/// The busy tables get autovacuum settings that keep up with them, and an operator's
/// own setting of one stands when the script runs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_busy_tables_are_vacuumed_early_and_an_operators_setting_stands() {
    let db = TestDb::new(Backend::Postgres).await;
    Jobs::connect(&db.url).await.expect("it migrates");
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    assert_eq!(
        job_table_options(&pool).await,
        [
            "autovacuum_analyze_scale_factor=0.02",
            "autovacuum_vacuum_cost_limit=2000",
            "autovacuum_vacuum_insert_scale_factor=0.02",
            "autovacuum_vacuum_scale_factor=0.01",
        ]
    );
    let delta: Vec<String> = sqlx::query_scalar(
        "SELECT unnest(reloptions) FROM pg_class WHERE oid = to_regclass('jobs_state_delta')",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(
        delta.contains(&"autovacuum_vacuum_threshold=1000".to_owned()),
        "the counters' deltas are vacuumed by count: {delta:?}"
    );

    // An operator tunes one option and drops another; the script runs again.
    sqlx::raw_sql(
        "ALTER TABLE jobs_job SET (autovacuum_vacuum_scale_factor = 0.05); \
         ALTER TABLE jobs_job RESET (autovacuum_vacuum_cost_limit); \
         DELETE FROM jobs_migration WHERE version = 40",
    )
    .execute(&pool)
    .await
    .unwrap();
    Jobs::connect(&db.url).await.expect("it migrates again");
    assert_eq!(
        job_table_options(&pool).await,
        [
            "autovacuum_analyze_scale_factor=0.02",
            "autovacuum_vacuum_cost_limit=2000",
            "autovacuum_vacuum_insert_scale_factor=0.02",
            "autovacuum_vacuum_scale_factor=0.05",
        ],
        "the operator's scale factor stands; the option they dropped is set again"
    );
}
