//! The connection every write of a process goes through.
//!
//! A pool would do, but sqlx pings a pooled connection each time it goes back to its pool:
//! a second round trip to SQLite's thread per write, which the next write waits for. The
//! storage's own connection behind a lock has no such trip.

use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use sqlx::{ConnectOptions, Sqlite, SqliteConnection};
use tokio::sync::{Mutex, MutexGuard};

use crate::{Error, Result};

/// Runs on each connection the writer opens, before its first statement.
pub(crate) type AfterConnect = Arc<
    dyn for<'c> Fn(
            &'c mut SqliteConnection,
        ) -> Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + 'c>>
        + Send
        + Sync,
>;

/// Where writes go: a connection of the storage's own, or the application's pool.
#[derive(Clone)]
pub(super) enum Writer {
    Own(Arc<OwnConnection>),
    Pool(SqlitePool),
}

pub(super) struct OwnConnection {
    options: SqliteConnectOptions,
    after_connect: Option<AfterConnect>,
    connection: Mutex<Option<SqliteConnection>>,
    /// Set by a write that failed in a way that leaves the connection unusable.
    broken: AtomicBool,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Writer::Own(_) => f.write_str("Writer::Own"),
            Writer::Pool(pool) => f.debug_tuple("Writer::Pool").field(pool).finish(),
        }
    }
}

impl Writer {
    /// Opens the connection now, so that a bad URL fails at connect time.
    pub(super) async fn open(
        options: SqliteConnectOptions,
        after_connect: Option<AfterConnect>,
    ) -> Result<Self> {
        let mut own = OwnConnection {
            options,
            after_connect,
            connection: Mutex::new(None),
            broken: AtomicBool::new(false),
        };
        let opened = own.connect().await?;
        *own.connection.get_mut() = Some(opened);
        Ok(Writer::Own(Arc::new(own)))
    }

    /// A writer of its own on the same file, for a caller that must not queue behind
    /// this one (the server's heartbeat), whose connection waits at most `busy` for
    /// another connection's write lock; `None` for a writer on a pool (the
    /// application's, or an in-memory database, which a second connection would not see).
    pub(super) async fn dedicated(&self, busy: std::time::Duration) -> Result<Option<Self>> {
        match self {
            Writer::Pool(_) => Ok(None),
            Writer::Own(own) => Ok(Some(
                Writer::open(own.options.clone().busy_timeout(busy), None).await?,
            )),
        }
    }

    /// Waits for the connection. A transaction left open by a cancelled caller is rolled
    /// back before anything else runs: dropping sqlx's `Transaction` queues its rollback
    /// on the connection's thread, which runs commands in order.
    pub(super) async fn lock(&self) -> Result<WriterConnection<'_>> {
        match self {
            Writer::Pool(pool) => Ok(WriterConnection::Pooled(pool.acquire().await?)),
            Writer::Own(own) => {
                let mut connection = own.connection.lock().await;
                if own.broken.swap(false, Ordering::AcqRel) {
                    connection.take();
                }
                if connection.is_none() {
                    *connection = Some(own.connect().await?);
                }
                Ok(WriterConnection::Own(connection))
            }
        }
    }

    /// Notes the result of a storage call: after an error that means the connection is
    /// gone (its thread stopped), the next write opens a new one.
    pub(super) fn observe<T>(&self, result: &Result<T>) {
        if let (Writer::Own(own), Err(Error::Database(error))) = (self, result)
            && matches!(error, sqlx::Error::WorkerCrashed | sqlx::Error::Io(_))
        {
            own.broken.store(true, Ordering::Release);
        }
    }
}

impl OwnConnection {
    async fn connect(&self) -> Result<SqliteConnection> {
        let mut connection = self.options.connect().await?;
        if let Some(after_connect) = &self.after_connect {
            after_connect(&mut connection).await?;
        }
        Ok(connection)
    }
}

/// The writer's connection, held until dropped.
pub(super) enum WriterConnection<'w> {
    Own(MutexGuard<'w, Option<SqliteConnection>>),
    Pooled(PoolConnection<Sqlite>),
}

impl Deref for WriterConnection<'_> {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        match self {
            // `Writer::lock` hands the guard out only once it holds a connection.
            WriterConnection::Own(guard) => guard.as_ref().expect("writer connection open"),
            WriterConnection::Pooled(pooled) => pooled,
        }
    }
}

impl DerefMut for WriterConnection<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self {
            WriterConnection::Own(guard) => guard.as_mut().expect("writer connection open"),
            WriterConnection::Pooled(pooled) => pooled,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use sqlx::Connection;

    use super::*;

    async fn writer(dir: &tempfile::TempDir, opened: Arc<AtomicUsize>) -> Writer {
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("jobs.db"))
            .create_if_missing(true);
        let after_connect: AfterConnect = Arc::new(move |_| {
            opened.fetch_add(1, Ordering::Relaxed);
            Box::pin(async { Ok(()) })
        });
        let writer = Writer::open(options, Some(after_connect)).await.unwrap();
        sqlx::query("CREATE TABLE t (n INTEGER)")
            .execute(&mut *writer.lock().await.unwrap())
            .await
            .unwrap();
        writer
    }

    async fn count(writer: &Writer) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&mut *writer.lock().await.unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_write_cancelled_inside_its_transaction_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir, Arc::default()).await;
        let (inserted, wait) = tokio::sync::oneshot::channel();
        let task = tokio::spawn({
            let writer = writer.clone();
            async move {
                let mut conn = writer.lock().await.unwrap();
                let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
                sqlx::query("INSERT INTO t VALUES (1)")
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                inserted.send(()).unwrap();
                std::future::pending::<()>().await;
            }
        });
        wait.await.unwrap();
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());

        let mut conn = writer.lock().await.unwrap();
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("INSERT INTO t VALUES (2)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(!conn.is_in_transaction());
        drop(conn);
        assert_eq!(count(&writer).await, 1);
    }

    #[tokio::test]
    async fn a_connection_that_broke_is_replaced_on_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let opened = Arc::new(AtomicUsize::new(0));
        let writer = writer(&dir, opened.clone()).await;
        writer.observe(&Ok::<_, Error>(()));
        writer.observe(&Err::<(), _>(Error::Database(sqlx::Error::RowNotFound)));
        assert_eq!(count(&writer).await, 0);
        assert_eq!(opened.load(Ordering::Relaxed), 1);

        writer.observe(&Err::<(), _>(Error::Database(sqlx::Error::WorkerCrashed)));
        assert_eq!(count(&writer).await, 0);
        assert_eq!(opened.load(Ordering::Relaxed), 2);
    }
}
