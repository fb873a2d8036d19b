//! A transaction the storage begins when its caller is dropped before `BEGIN` is
//! answered (a storage call's timeout).

use std::future::Future;

use super::PgStorage;
use super::plan_tests::one_connection;
use crate::storage::conformance::TestDb;
use crate::storage::migrate::{self, Migration, Plan};

/// A transaction begun by a storage call that a timeout drops before `BEGIN` is answered
/// leaves no transaction open on the pool's connection: sqlx's `begin` (0.8.4 and on)
/// counted the transaction only once answered, so the connection went back to the pool
/// inside it, and every later statement on it (a claim, a result) was part of a
/// transaction nobody would commit, invisible to the other connections.
#[tokio::test]
async fn a_begin_dropped_before_its_answer_leaves_no_transaction_open() {
    let db = TestDb::postgres().await;
    let storage = db.postgres_storage();
    let one = probed(storage).await;
    assert!(
        dropped_after_begin(storage, &one, || super::begin(&one.pool)).await,
        "never dropped between BEGIN and its answer"
    );
    assert_nothing_left_open(storage, &one).await;
}

/// The same for the transaction a node's migrations run in, which starts the node: an
/// application that gives up on a slow start (a timeout around its connect) left a
/// connection of its pool inside a transaction.
#[tokio::test]
async fn a_migration_dropped_before_its_begin_is_answered_leaves_no_transaction_open() {
    const PLAN: Plan = Plan::postgres_with(&[Migration {
        version: 2001,
        description: "nothing",
        sql: "SELECT 1",
        concurrent: false,
    }]);
    let db = TestDb::postgres().await;
    let storage = db.postgres_storage();
    let one = probed(storage).await;
    let migration = || async {
        // Not applied yet, so that the run begins its transaction.
        sqlx::query("DELETE FROM jobs_migration WHERE version = 2001")
            .execute(&storage.pool)
            .await
            .unwrap();
        migrate::postgres(&one.pool, &PLAN).await
    };
    assert!(
        dropped_after_begin(storage, &one, migration).await,
        "never dropped between BEGIN and its answer"
    );
    assert_nothing_left_open(storage, &one).await;
}

/// A pool of one connection on `storage`'s database, which holds the table `begin_probe`.
async fn probed(storage: &PgStorage) -> PgStorage {
    let one = one_connection(storage).await;
    sqlx::query("CREATE TABLE begin_probe (n int)")
        .execute(&one.pool)
        .await
        .unwrap();
    one
}

/// A row inserted on `one`'s connection is seen from another: no transaction was left
/// open on it.
async fn assert_nothing_left_open(storage: &PgStorage, one: &PgStorage) {
    sqlx::query("INSERT INTO begin_probe VALUES (1)")
        .execute(&one.pool)
        .await
        .unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM begin_probe")
        .fetch_one(&storage.pool)
        .await
        .unwrap();
    assert_eq!(seen, 1, "the insert is inside a transaction nobody commits");
}

/// Polls futures `make` makes, each until the server has run a `BEGIN` it sent on
/// `one`'s connection and nothing after it (then drops it, unanswered) or until it is
/// done, up to 20 of them: whether one was dropped so.
async fn dropped_after_begin<F: Future>(
    storage: &PgStorage,
    one: &PgStorage,
    mut make: impl FnMut() -> F,
) -> bool {
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&one.pool)
        .await
        .unwrap();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..20 {
        let mut begin = std::pin::pin!(make());
        for _ in 0..500 {
            if begin.as_mut().poll(&mut cx).is_ready() {
                break;
            }
            // Not polled meanwhile, so it goes no further than what it has sent (a
            // begin in a task of its own runs to its end).
            for _ in 0..10 {
                let begun: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity \
                         WHERE pid = $1 AND state = 'idle in transaction' AND query = 'BEGIN')",
                )
                .bind(pid)
                .fetch_one(&storage.pool)
                .await
                .unwrap();
                if begun {
                    return true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
    }
    false
}
