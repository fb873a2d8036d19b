//! The claim of a server that runs keyed jobs (`jobs_claim_pick_keyed`, migration
//! 0024): its plan on a big table with stale statistics, and the lock on each key that
//! makes a claim count the running jobs of another claim of that key that commits
//! while it waits.

use std::time::Duration;

use chrono::Utc;

use super::PgStorage;
use super::plan_tests::{one_connection, reads};
use crate::storage::conformance::{TestDb, claim};
use crate::storage::{ClaimRequest, LifecycleStore};

/// A claim of up to `limit` jobs that reads concurrency keys, all started at once.
fn keyed_claim(limit: u32) -> ClaimRequest<'static> {
    ClaimRequest {
        keyed: true,
        ..claim("s", Utc::now(), limit)
    }
}

/// Inserts `rows` jobs in `state`, the `i`-th of key `key-(i % keys)` (none when `keys`
/// is 0).
async fn fill(storage: &PgStorage, state: &str, rows: i64, keys: i64) {
    sqlx::query(
        "INSERT INTO jobs_job (id, name, display_name, payload, state, queue, priority, \
             run_at, attempt, created_at, updated_at, concurrency_key, concurrency) \
         SELECT gen_random_uuid(), 'noop', 'noop', '{}', $1, 'default', 0, \
             now() - interval '1 hour' + i * interval '1 ms', 0, now(), now(), \
             CASE WHEN $3 > 0 THEN 'key-' || (i % $3) END, CASE WHEN $3 > 0 THEN 1 END \
         FROM generate_series(1, $2) AS i",
    )
    .bind(state)
    .bind(rows)
    .bind(keys)
    .execute(&storage.pool)
    .await
    .unwrap();
}

/// A backlog of keyed and unkeyed jobs that arrives after the last `ANALYZE` of a
/// table of finished jobs: the keyed claim takes one job of each key and the jobs
/// without a key, never scans the table, and reads the keyed backlog (each waiting
/// keyed row is read to rank it), not the finished rows.
#[tokio::test]
async fn a_keyed_claim_on_a_big_analyzed_table_reads_no_finished_rows() {
    let db = TestDb::postgres().await;
    let storage = db.postgres_storage();
    fill(storage, "Succeeded", 50_000, 0).await;
    sqlx::query("ANALYZE jobs_job")
        .execute(&storage.pool)
        .await
        .unwrap();
    fill(storage, "Enqueued", 2_000, 50).await;
    fill(storage, "Enqueued", 2_000, 0).await;

    let one = one_connection(storage).await;
    let before = reads(&one).await;
    let claimed = one.jobs_claim(keyed_claim(100)).await.unwrap();
    let after = reads(&one).await;
    assert_eq!(claimed.len(), 100);
    let (fetched, scanned) = (after.0 - before.0, after.1 - before.1);
    assert_eq!(
        scanned, 0,
        "the keyed claim scanned {scanned} rows of the table"
    );
    assert!(
        fetched <= 10_000,
        "the keyed claim fetched {fetched} rows through indexes, of 4,000 runnable \
         (each keyed one read twice: to find the keys with room, and to rank them)"
    );
    let keyed = sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM jobs_job WHERE state = 'Processing' \
         AND concurrency_key IS NOT NULL",
    )
    .fetch_one(&storage.pool)
    .await
    .unwrap();
    assert_eq!(keyed, 50, "one job of each of the 50 keys");
}

/// A claim of a key whose lock another claim holds waits for it, then counts the job
/// that claim committed: it takes nothing, where a count without the lock (from a
/// snapshot taken before that commit) would take a second job of a key limited to one.
#[tokio::test]
async fn a_claim_waits_for_another_claim_of_its_key_and_counts_what_it_took() {
    let db = TestDb::postgres().await;
    let storage = db.postgres_storage();
    fill(storage, "Enqueued", 1, 1).await;
    // Another claim of `key-0` under way: it holds the key's lock and has taken a job
    // of it, not yet committed.
    let mut other = storage.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('jobs_concurrency:key-0', 0))")
        .execute(&mut *other)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO jobs_job (id, name, display_name, payload, state, queue, priority, \
             run_at, attempt, created_at, updated_at, concurrency_key, concurrency) \
         VALUES (gen_random_uuid(), 'noop', 'noop', '{}', 'Processing', 'default', 0, \
             now(), 1, now(), now(), 'key-0', 1)",
    )
    .execute(&mut *other)
    .await
    .unwrap();
    let (waited, claimed) = claim_behind(storage, other, keyed_claim(10)).await;
    assert!(
        claimed.is_empty(),
        "claimed {} jobs of a key whose one slot another claim took",
        claimed.len()
    );
    assert!(waited, "the claim waits for the key's lock");
}

/// Sends `request` while `other` (a transaction holding a lock the claim takes) is
/// open, commits `other` after 300 ms, and returns whether the claim was still
/// waiting then, and what it claimed.
pub(super) async fn claim_behind(
    storage: &PgStorage,
    other: sqlx::Transaction<'static, sqlx::Postgres>,
    request: ClaimRequest<'static>,
) -> (bool, Vec<crate::storage::ClaimedJob>) {
    let pool = storage.pool.clone();
    let claiming =
        tokio::spawn(async move { PgStorage::from_pool(pool).jobs_claim(request).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let waited = !claiming.is_finished();
    other.commit().await.unwrap();
    (waited, claiming.await.unwrap().unwrap())
}
