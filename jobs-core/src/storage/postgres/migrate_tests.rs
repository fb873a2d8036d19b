//! Scripts that build indexes `CONCURRENTLY` run apart from the others, outside a
//! transaction, in their order; an index a failed build left invalid is built again.

use crate::storage::conformance::TestDb;
use crate::storage::migrate::{self, Migration, Plan};

const SCRIPTS: &[Migration] = &[
    Migration {
        version: 1001,
        description: "a table",
        sql: "CREATE TABLE jobs_t (id int, v text); \
              INSERT INTO jobs_t SELECT g, 'x' || (g % 10) FROM generate_series(1, 1000) AS g",
        concurrent: false,
    },
    Migration {
        version: 1002,
        description: "its indexes, built concurrently",
        sql: "-- both built without blocking writers\n\
              CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_t_v ON jobs_t (v);\n\
              CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_t_id ON jobs_t (id);\n",
        concurrent: true,
    },
    Migration {
        version: 1003,
        description: "a table after them",
        sql: "CREATE TABLE jobs_t2 (id int)",
        concurrent: false,
    },
];

const PLAN: Plan = Plan::postgres_with(SCRIPTS);

async fn valid(pool: &sqlx::PgPool, index: &str) -> Option<bool> {
    sqlx::query_scalar(
        "SELECT i.indisvalid FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid \
         WHERE c.relname = $1",
    )
    .bind(index)
    .fetch_optional(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_concurrent_script_runs_apart_in_its_order_and_rebuilds_an_invalid_index() {
    let db = TestDb::postgres().await;
    let storage = db.postgres_storage();
    let pool = &storage.pool;
    // The first script ran; the second crashed in the middle of a build, as a unique
    // index over duplicate values does: its index stays, invalid.
    sqlx::query("CREATE TABLE jobs_t (id int, v text)")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO jobs_t VALUES (1, 'x'), (2, 'x')")
        .execute(pool)
        .await
        .unwrap();
    let failed = sqlx::query("CREATE UNIQUE INDEX CONCURRENTLY jobs_t_v ON jobs_t (v)")
        .execute(pool)
        .await;
    assert!(failed.is_err(), "duplicates fail the build");
    assert_eq!(valid(pool, "jobs_t_v").await, Some(false));
    sqlx::query("INSERT INTO jobs_migration (version, description) VALUES (1001, 'a table')")
        .execute(pool)
        .await
        .unwrap();

    migrate::postgres(pool, &PLAN).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM jobs_migration WHERE version > 1000 ORDER BY 1")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(versions, [1001, 1002, 1003]);
    assert_eq!(valid(pool, "jobs_t_v").await, Some(true), "built again");
    assert_eq!(valid(pool, "jobs_t_id").await, Some(true));
    let unique: bool = sqlx::query_scalar(
        "SELECT i.indisunique FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid \
         WHERE c.relname = 'jobs_t_v'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(!unique, "the script's index, not the failed one");
    // Current now: another run changes nothing.
    migrate::postgres(pool, &PLAN).await.unwrap();
}
