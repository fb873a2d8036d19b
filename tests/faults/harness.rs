//! The harness itself does what the other tests rely on: through the proxy, a query
//! passes, hangs while blackholed, fails at once when reset; new connections are held
//! while blackholed and refused while resetting; the test's own PostgreSQL comes back
//! after a crash; the execution log finds an overlap.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::{Connection, PgConnection};
use tokio::time::timeout;

use crate::support::fault::{self, ExecutionLog, FaultProxy, Mode, OwnPostgres, overlaps};

async fn select_one(conn: &mut PgConnection) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT 1").fetch_one(conn).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_passes_blackholes_and_resets_and_the_own_server_restarts() {
    let _serial = fault::serial().await;
    let postgres = tokio::task::spawn_blocking(OwnPostgres::start)
        .await
        .unwrap();
    let proxy = FaultProxy::start(postgres.addr()).await.unwrap();
    let url = proxy.url(&postgres.url());
    assert!(url.starts_with("postgres://postgres@127.0.0.1:"), "{url}");

    let mut conn = PgConnection::connect(&url).await.unwrap();
    assert_eq!(select_one(&mut conn).await.unwrap(), 1);

    proxy.set(Mode::Blackhole);
    assert!(
        timeout(Duration::from_millis(500), select_one(&mut conn))
            .await
            .is_err(),
        "a query hangs while blackholed"
    );
    assert!(
        timeout(Duration::from_millis(500), PgConnection::connect(&url))
            .await
            .is_err(),
        "a new connection hangs while blackholed"
    );

    proxy.set(Mode::Reset);
    assert!(
        PgConnection::connect(&url).await.is_err(),
        "a new connection is refused while resetting"
    );
    let mut held = {
        proxy.set(Mode::Pass);
        let held = PgConnection::connect(&url).await.unwrap();
        proxy.set(Mode::Reset);
        held
    };
    let failed = timeout(Duration::from_secs(2), select_one(&mut held)).await;
    assert!(
        matches!(failed, Ok(Err(_))),
        "an open connection fails at once when reset: {failed:?}"
    );

    proxy.set(Mode::Pass);
    let mut fresh = PgConnection::connect(&url).await.unwrap();
    assert_eq!(select_one(&mut fresh).await.unwrap(), 1);

    let postgres = tokio::task::spawn_blocking(move || {
        postgres.crash();
        postgres
    })
    .await
    .unwrap();
    assert!(select_one(&mut fresh).await.is_err(), "the server is down");
    assert!(PgConnection::connect(&url).await.is_err(), "refused");
    let postgres = tokio::task::spawn_blocking(move || {
        postgres.start_again();
        postgres
    })
    .await
    .unwrap();
    let mut back = PgConnection::connect(&url).await.unwrap();
    assert_eq!(select_one(&mut back).await.unwrap(), 1);
    drop(postgres);
}

#[test]
fn the_execution_log_finds_overlaps_and_ends_killed_executions_at_the_kill() {
    let dir = tempfile::tempdir().unwrap();
    let log = ExecutionLog::open(dir.path().join("executions")).unwrap();
    let job = uuid::Uuid::now_v7();
    let first = log.start(job, 1, "work");
    let second = log.start(job, 2, "work");
    drop(first);
    drop(second);
    let other = uuid::Uuid::now_v7();
    drop(log.start(other, 1, "work"));
    let killed = log.start(other, 2, "work");
    std::mem::forget(killed);

    let runs = log.runs();
    assert_eq!(runs.len(), 4);
    let found = overlaps(&runs, &HashMap::new());
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].job, job);
    assert_eq!((found[0].first.0, found[0].second.0), (1, 2));
    // The unfinished execution of `other` started after its first ended: no overlap
    // either way, whether its process is known to be killed or not.
    let pid = std::process::id();
    assert_eq!(
        overlaps(&runs, &HashMap::from([(pid, fault::monotonic_ns())])).len(),
        1
    );
}
