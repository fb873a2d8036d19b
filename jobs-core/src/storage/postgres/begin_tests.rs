//! A transaction the storage begins when its caller is dropped before `BEGIN` is
//! answered (a storage call's timeout).

use super::plan_tests::one_connection;
use crate::storage::AnyStorage;
use crate::storage::conformance::TestDb;

/// A transaction begun by a storage call that a timeout drops before `BEGIN` is answered
/// leaves no transaction open on the pool's connection: sqlx's `begin` (0.8.4 and on)
/// counted the transaction only once answered, so the connection went back to the pool
/// inside it, and every later statement on it (a claim, a result) was part of a
/// transaction nobody would commit, invisible to the other connections.
#[tokio::test]
async fn a_begin_dropped_before_its_answer_leaves_no_transaction_open() {
    let db = TestDb::postgres().await;
    let AnyStorage::Postgres(storage) = &db.storage else {
        unreachable!("a PostgreSQL test database");
    };
    let one = one_connection(storage).await;
    sqlx::query("CREATE TABLE begin_probe (n int)")
        .execute(&one.pool)
        .await
        .unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&one.pool)
        .await
        .unwrap();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut dropped_unanswered = false;
    for _ in 0..20 {
        let mut begin = std::pin::pin!(super::begin(&one.pool));
        // Polled until the server has run its `BEGIN`, then dropped unanswered.
        for _ in 0..5_000 {
            if begin.as_mut().poll(&mut cx).is_ready() {
                break;
            }
            let begun: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity \
                     WHERE pid = $1 AND state = 'idle in transaction')",
            )
            .bind(pid)
            .fetch_one(&storage.pool)
            .await
            .unwrap();
            if begun {
                dropped_unanswered = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        if dropped_unanswered {
            break;
        }
    }
    assert!(
        dropped_unanswered,
        "never dropped between BEGIN and its answer"
    );
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
