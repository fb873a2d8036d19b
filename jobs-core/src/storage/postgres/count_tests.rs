//! The jobs stored before the counters existed are counted once the migrations that
//! added them have run, and the jobs written between the two scripts (by any node, while
//! the backfill has not run yet) are counted once, not twice. An insert is counted once
//! whoever writes it: this build's counts itself (migration 42), another's is counted
//! by the trigger.

use crate::storage::conformance::{TestDb, at, claim, id, job};
use crate::storage::{AdminStore, LifecycleStore};

#[tokio::test]
async fn postgres_migrations_count_the_jobs_stored_before_and_meanwhile() {
    let db = TestDb::postgres().await;
    let storage = db.postgres_storage();
    // The schema before the counters: no triggers, no counts.
    sqlx::raw_sql(
        "DROP TRIGGER jobs_job_counted_in ON jobs_job; \
         DROP TRIGGER jobs_job_counted_moved ON jobs_job; \
         DROP TRIGGER jobs_job_counted_out ON jobs_job; \
         DELETE FROM jobs_state_count; DELETE FROM jobs_state_delta",
    )
    .execute(&storage.pool)
    .await
    .unwrap();
    storage
        .jobs_insert(&[job(id(1), "old"), job(id(2), "old"), job(id(3), "old")])
        .await
        .unwrap();
    storage.jobs_claim(claim("a", at(1), 1)).await.unwrap();
    // The triggers, and (as the migrations run them before any write of this build)
    // the insert's trigger that leaves this build's inserts to count themselves.
    for script in [
        include_str!("../../../migrations/postgres/0038_state_counts.sql"),
        include_str!("../../../migrations/postgres/0042_insert_counts_itself.sql"),
    ] {
        sqlx::raw_sql(script).execute(&storage.pool).await.unwrap();
    }
    // Written after the triggers, before the backfill: in the counters already.
    storage.jobs_insert(&[job(id(4), "new")]).await.unwrap();
    storage.jobs_claim(claim("a", at(2), 1)).await.unwrap();
    storage.jobs_count_fold().await.unwrap();
    let backfill = include_str!("../../../migrations/postgres/0039_state_counts_backfill.sql");
    sqlx::raw_sql(backfill)
        .execute(&storage.pool)
        .await
        .unwrap();
    let expected = storage.jobs_count_scanned().await;
    assert_eq!(storage.jobs_count().await.unwrap(), expected);
    // Run again (a node that stopped before recording it): nothing is missing.
    sqlx::raw_sql(backfill)
        .execute(&storage.pool)
        .await
        .unwrap();
    assert_eq!(storage.jobs_count().await.unwrap(), expected);
    storage.jobs_count_fold().await.unwrap();
    assert_eq!(storage.jobs_count().await.unwrap(), expected);
}

/// Servers fold while others write and fold: every change is folded once, and two
/// folds never deadlock on the counter rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_folds_at_once_with_writes_count_each_change_once() {
    let db = TestDb::postgres().await;
    let storage = db.postgres_storage();
    let tasks: Vec<_> = (0..4_u128)
        .map(|task| {
            let storage = storage.clone();
            tokio::spawn(async move {
                for round in 0..25_u128 {
                    let first = 1 + task * 1_000 + round * 10;
                    let jobs: Vec<_> = (first..first + 3).map(|n| job(id(n), "x")).collect();
                    storage.jobs_insert(&jobs).await.unwrap();
                    storage.jobs_count_fold().await.unwrap();
                    storage.job_delete(id(first), at(5)).await.unwrap();
                    storage.jobs_count_fold().await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let expected = storage.jobs_count_scanned().await;
    assert_eq!(expected.iter().map(|(_, n)| n).sum::<u64>(), 300);
    assert_eq!(storage.jobs_count().await.unwrap(), expected);
    storage.jobs_count_fold().await.unwrap();
    assert_eq!(storage.jobs_count().await.unwrap(), expected);
}

/// This build's inserts count themselves in their statement; an insert that names no
/// `created_state` (an older build's, one by hand) is counted by the trigger, a row at
/// a time: each is counted once, in one transaction together too.
#[tokio::test]
async fn postgres_inserts_are_counted_once_whoever_writes_them() {
    let db = TestDb::postgres().await;
    let storage = db.postgres_storage();
    let older = "INSERT INTO jobs_job (id, name, display_name, payload, state, queue, \
             priority, run_at, created_at, updated_at) \
         SELECT gen_random_uuid(), 'old', 'old job', '{}', state, 'default', 0, now(), \
             now(), now() \
         FROM unnest(ARRAY['Enqueued', 'Scheduled', 'Enqueued']) AS state";
    storage.jobs_insert(&[job(id(1), "one")]).await.unwrap();
    let mut scheduled = job(id(3), "many");
    scheduled.state = crate::JobState::Scheduled;
    storage
        .jobs_insert(&[job(id(2), "many"), scheduled])
        .await
        .unwrap();
    sqlx::raw_sql(older).execute(&storage.pool).await.unwrap();
    let mut transaction = storage.pool.begin().await.unwrap();
    super::lifecycle::jobs_insert_with(&mut transaction, &[job(id(4), "in a transaction")])
        .await
        .unwrap();
    sqlx::raw_sql(older)
        .execute(&mut *transaction)
        .await
        .unwrap();
    transaction.commit().await.unwrap();
    // A dedupe that stores nothing counts nothing.
    storage.jobs_insert(&[job(id(1), "one")]).await.unwrap();
    let expected = storage.jobs_count_scanned().await;
    assert_eq!(expected.iter().map(|(_, n)| n).sum::<u64>(), 10);
    assert_eq!(storage.jobs_count().await.unwrap(), expected);
    storage.jobs_count_fold().await.unwrap();
    assert_eq!(storage.jobs_count().await.unwrap(), expected);
}
