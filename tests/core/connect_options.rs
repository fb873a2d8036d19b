//! `ConnectOptions` reach the connection a URL-built client opens.

use std::sync::{Arc, Mutex};

use jobs::{ConnectOptions, Error, Jobs, SqliteSynchronous};

use crate::support::{Backend, TestDb};

/// The `PRAGMA synchronous` of the connection a client built with `options` writes
/// through (0 off, 1 normal, 2 full).
async fn writer_synchronous(options: ConnectOptions) -> i64 {
    let db = TestDb::new(Backend::Sqlite).await;
    let seen = Arc::new(Mutex::new(None));
    let record = seen.clone();
    let jobs = Jobs::builder()
        .url(db.url.clone())
        .connect_options(options)
        .sqlite_writer_after_connect(move |conn| {
            let record = record.clone();
            Box::pin(async move {
                let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
                    .fetch_one(&mut *conn)
                    .await?;
                *record.lock().unwrap() = Some(level);
                Ok(())
            })
        })
        .connect()
        .await
        .expect("connects");
    drop(jobs);
    seen.lock().unwrap().expect("the writer connected")
}

#[tokio::test]
async fn sqlite_commits_are_normal_by_default_and_full_when_asked() {
    assert_eq!(writer_synchronous(ConnectOptions::default()).await, 1);
    let full = ConnectOptions::default().sqlite_synchronous(SqliteSynchronous::Full);
    assert_eq!(writer_synchronous(full).await, 2);
}

#[tokio::test]
async fn impossible_pool_sizes_are_refused_before_connecting() {
    for (options, needle) in [
        (
            ConnectOptions::default().max_connections(0),
            "max_connections",
        ),
        (
            ConnectOptions::default().sqlite_readers(0),
            "sqlite_readers",
        ),
    ] {
        let error = Jobs::builder()
            .url("sqlite::memory:")
            .connect_options(options)
            .connect()
            .await
            .expect_err("refused");
        assert!(
            matches!(&error, Error::Config(message) if message.contains(needle)),
            "{error}"
        );
    }
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_client_works_on_a_pool_of_one_connection() {
    let db = TestDb::new(Backend::Postgres).await;
    let jobs = Jobs::builder()
        .url(db.url.clone())
        .connect_options(
            ConnectOptions::default()
                .max_connections(1)
                .acquire_timeout(std::time::Duration::from_secs(5)),
        )
        .connect()
        .await
        .expect("connects");
    assert_eq!(jobs.count_by_state().await.unwrap(), vec![]);
}
