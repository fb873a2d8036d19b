//! The lock of a rated claim (`jobs_rate_room`, migration 0028): a claim of a scope
//! whose lock another claim holds waits for it, then counts the starts that claim
//! recorded. Likewise for a key's rate, under the key's lock
//! (`jobs_claim_pick_keyed`, migration 0031).

use chrono::Utc;

use super::key_tests::claim_behind;
use crate::storage::conformance::{TestDb, claim, id, job};
use crate::storage::{ClaimRequest, LifecycleStore, NewJob, QueueSelector, RateCap};

/// A claim of up to 10 jobs of `llm`, at most 3 of which start in any minute.
fn rated_claim() -> ClaimRequest<'static> {
    ClaimRequest {
        queues: QueueSelector::Only("llm"),
        rate: Some(RateCap {
            scope: "queue:llm",
            count: 3,
            window: chrono::Duration::seconds(60),
        }),
        ..claim("s", Utc::now(), 10)
    }
}

/// Another claim of the scope under way holds its lock and has recorded three starts,
/// not yet committed: a rated claim waits for it and then takes nothing, where a count
/// without the lock (from a snapshot taken before that commit) would take three more.
#[tokio::test]
async fn a_rated_claim_waits_for_another_claim_of_its_scope_and_counts_its_starts() {
    let db = TestDb::postgres().await;
    let storage = db.postgres_storage();
    let jobs: Vec<NewJob> = (1..=5)
        .map(|n| NewJob {
            queue: "llm".to_owned(),
            run_at: Utc::now() - chrono::Duration::seconds(1),
            ..job(id(n), "rated")
        })
        .collect();
    storage.jobs_insert(&jobs).await.unwrap();
    let mut other = storage.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('jobs_rate:queue:llm', 0))")
        .execute(&mut *other)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO jobs_rate_start (scope, started_at, starts) \
         VALUES ('queue:llm', clock_timestamp(), 3)",
    )
    .execute(&mut *other)
    .await
    .unwrap();
    let (waited, claimed) = claim_behind(storage, other, rated_claim()).await;
    assert!(
        claimed.is_empty(),
        "claimed {} jobs of a scope whose window another claim filled",
        claimed.len()
    );
    assert!(waited, "the claim waits for the scope's lock");
}

/// Another claim of `key-0` under way holds the key's lock and has recorded three
/// starts of it, not yet committed: a keyed claim waits for it and then takes nothing
/// of a key rated at three a minute, where a count without the lock would take three.
#[tokio::test]
async fn a_keyed_claim_waits_for_another_claim_of_its_key_and_counts_its_starts() {
    let db = TestDb::postgres().await;
    let storage = db.postgres_storage();
    // Five jobs of `key-0`, three a minute, any number at once.
    sqlx::query(
        "INSERT INTO jobs_job (id, name, display_name, payload, state, queue, priority, \
             run_at, attempt, created_at, updated_at, concurrency_key, rate_count, \
             rate_window_ms) \
         SELECT gen_random_uuid(), 'noop', 'noop', '{}', 'Enqueued', 'default', 0, \
             now() - interval '1 hour', 0, now(), now(), 'key-0', 3, 60100 \
         FROM generate_series(1, 5)",
    )
    .execute(&storage.pool)
    .await
    .unwrap();
    let mut other = storage.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('jobs_concurrency:key-0', 0))")
        .execute(&mut *other)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO jobs_rate_start (scope, started_at, starts) \
         VALUES ('key:key-0', clock_timestamp(), 3)",
    )
    .execute(&mut *other)
    .await
    .unwrap();
    let keyed = ClaimRequest {
        keyed: true,
        ..claim("s", Utc::now(), 10)
    };
    let (waited, claimed) = claim_behind(storage, other, keyed).await;
    assert!(
        claimed.is_empty(),
        "claimed {} jobs of a key whose window another claim filled",
        claimed.len()
    );
    assert!(waited, "the claim waits for the key's lock");
}
