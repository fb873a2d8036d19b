//! The connection every write of a process goes through.
//!
//! A pool would do, but sqlx pings a pooled connection each time it goes back to its pool:
//! a second round trip to SQLite's thread per write, which the next write waits for. The
//! storage's own connection behind a lock has no such trip.
//!
//! The server's heartbeat must not queue behind the process's other writes
//! ([`Writer::dedicated`]). It once wrote through a connection of its own, but SQLite
//! gives a connection that waits for the write lock no turn: it sleeps 1, 2, 5… ms
//! between tries, and while the server drained short jobs its claims and results held
//! the lock back to back, so each try found it taken again and renewals timed out (a
//! server fenced itself off several times a minute in a drain, for no fault). Now the
//! heartbeat writes on the same connection through a lane of its own: ordinary writes
//! queue for the right to wait for the connection (`queue`), so at most one of them
//! waits for it at a time, and the heartbeat waits for it directly, behind at most the
//! write that holds it and that one. Both wait in order, so neither can starve the
//! other.

use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use sqlx::{ConnectOptions, Connection, Sqlite, SqliteConnection, TransactionManager};
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
    /// The same connection, for writes that go before those queued (the heartbeat's).
    First(Arc<OwnConnection>),
    Pool(SqlitePool),
}

pub(super) struct OwnConnection {
    options: SqliteConnectOptions,
    after_connect: Option<AfterConnect>,
    connection: Mutex<Option<SqliteConnection>>,
    /// Held by an ordinary write while it waits for `connection`, so that a write of
    /// [`Writer::First`] finds at most one of them ahead of it there.
    queue: Mutex<()>,
    /// Set by a write that failed in a way that leaves the connection unusable.
    broken: AtomicBool,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Writer::Own(_) => f.write_str("Writer::Own"),
            Writer::First(_) => f.write_str("Writer::First"),
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
            queue: Mutex::new(()),
            broken: AtomicBool::new(false),
        };
        let opened = own.connect().await?;
        *own.connection.get_mut() = Some(opened);
        Ok(Writer::Own(Arc::new(own)))
    }

    /// A writer for a caller that must not queue behind this one's writes (the server's
    /// heartbeat): the same connection, whose writes wait for at most the write that
    /// holds it and one queued (see the module's text); `None` for a writer on a pool
    /// (the application's, or an in-memory database), which the caller shares.
    pub(super) fn dedicated(&self) -> Option<Self> {
        match self {
            Writer::Pool(_) => None,
            Writer::Own(own) | Writer::First(own) => Some(Writer::First(own.clone())),
        }
    }

    /// Waits for the connection. A transaction left open by a cancelled caller is rolled
    /// back before anything else runs: dropping sqlx's `Transaction` queues its rollback
    /// on the connection's thread, which runs commands in order. A `begin_with` dropped
    /// after SQLite began but before it handed out its `Transaction` leaves a transaction
    /// that nothing would roll back, holding the write lock for good: a connection found
    /// in a transaction here, while no caller holds it, is closed, which rolls it back
    /// (one a dropped `Transaction`'s queued rollback has not reached yet is closed too,
    /// needlessly but harmlessly).
    pub(super) async fn lock(&self) -> Result<WriterConnection<'_>> {
        match self {
            Writer::Pool(pool) => {
                let mut pooled = pool.acquire().await?;
                // A pool pings a connection given back to it, which runs the rollback a
                // dropped `Transaction` queued: one still in a transaction here was
                // stranded by a cancelled `begin_with`. Rolled back, not closed: the
                // pool may be the only connection to an in-memory database.
                if pooled.is_in_transaction() {
                    <Sqlite as sqlx::Database>::TransactionManager::rollback(&mut pooled).await?;
                }
                Ok(WriterConnection::Pooled(pooled))
            }
            Writer::Own(own) => {
                // Let go once the connection is held: the next ordinary write may then
                // wait for it, behind any write of `First` already waiting.
                let _queue = own.queue.lock().await;
                own.lock().await
            }
            Writer::First(own) => own.lock().await,
        }
    }

    /// Notes the result of a storage call: after an error that means the connection is
    /// gone (its thread stopped), the next write opens a new one.
    pub(super) fn observe<T>(&self, result: &Result<T>) {
        if let (Writer::Own(own) | Writer::First(own), Err(Error::Database(error))) = (self, result)
            && matches!(error, sqlx::Error::WorkerCrashed | sqlx::Error::Io(_))
        {
            own.broken.store(true, Ordering::Release);
        }
    }
}

impl OwnConnection {
    /// Waits for the connection; see [`Writer::lock`].
    async fn lock(&self) -> Result<WriterConnection<'_>> {
        let mut connection = self.connection.lock().await;
        let stranded = connection
            .as_ref()
            .is_some_and(Connection::is_in_transaction);
        if self.broken.swap(false, Ordering::AcqRel) || stranded {
            connection.take();
        }
        if connection.is_none() {
            *connection = Some(self.connect().await?);
        }
        Ok(WriterConnection::Own(connection))
    }

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

    /// A transaction that took the write lock and inserted `n` into `t`.
    async fn begin_inserting(conn: &mut SqliteConnection, n: i64) -> sqlx::Transaction<'_, Sqlite> {
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("INSERT INTO t VALUES (?)")
            .bind(n)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx
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
                let _tx = begin_inserting(&mut conn, 1).await;
                inserted.send(()).unwrap();
                std::future::pending::<()>().await;
            }
        });
        wait.await.unwrap();
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());

        let mut conn = writer.lock().await.unwrap();
        let tx = begin_inserting(&mut conn, 2).await;
        tx.commit().await.unwrap();
        assert!(!conn.is_in_transaction());
        drop(conn);
        assert_eq!(count(&writer).await, 1);
    }

    /// Whether another connection can take the write lock now (no waiting).
    async fn lock_is_free(dir: &tempfile::TempDir) -> bool {
        let mut other = SqliteConnectOptions::new()
            .filename(dir.path().join("jobs.db"))
            .busy_timeout(std::time::Duration::ZERO)
            .connect()
            .await
            .unwrap();
        let free = sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut other)
            .await
            .is_ok();
        if free {
            sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
        }
        free
    }

    /// A writer on a pool of one connection to the same file, as the application's
    /// pool is used.
    async fn pooled_writer(dir: &tempfile::TempDir) -> Writer {
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("jobs.db"))
            .create_if_missing(true);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        let writer = Writer::Pool(pool);
        sqlx::query("CREATE TABLE t (n INTEGER)")
            .execute(&mut *writer.lock().await.unwrap())
            .await
            .unwrap();
        writer
    }

    /// sqlx's `begin_with` awaits twice: SQLite's `BEGIN`, then a check of the
    /// connection. Dropped between the two (a storage call's timeout), it leaves the
    /// transaction open with no `Transaction` to roll it back: the connection held the
    /// write lock from then on, every later write on it a savepoint inside that
    /// transaction, and every other connection on the file waited for it forever (a
    /// server's heartbeat, whose renewals nobody else saw, and all claims and results).
    /// The next write on the writer undoes such a transaction.
    #[tokio::test]
    async fn a_begin_cancelled_after_sqlite_began_leaves_no_transaction_open() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir, Arc::default()).await;
        begin_cancelled_between_its_awaits(&dir, &writer).await;
    }

    /// The same on the application's pool: sqlx pings a connection given back to its
    /// pool, which keeps a transaction nobody holds open, and hands it out again.
    #[tokio::test]
    async fn a_begin_cancelled_on_a_pool_leaves_no_transaction_open() {
        let dir = tempfile::tempdir().unwrap();
        let writer = pooled_writer(&dir).await;
        begin_cancelled_between_its_awaits(&dir, &writer).await;
    }

    async fn begin_cancelled_between_its_awaits(dir: &tempfile::TempDir, writer: &Writer) {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut dropped_between = false;
        for _ in 0..100 {
            let mut conn = writer.lock().await.unwrap();
            let mut begin = std::pin::pin!(conn.begin_with("BEGIN IMMEDIATE"));
            // Sends `BEGIN`; the connection's thread runs it and waits to hand over
            // the answer until the next poll.
            assert!(begin.as_mut().poll(&mut cx).is_pending());
            while lock_is_free(dir).await {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            // Takes the answer and goes on to the check, which mostly waits for the
            // thread; when the check is done at once, the `Transaction` it returns
            // rolls back on drop, and the next try is made.
            if begin.as_mut().poll(&mut cx).is_pending() {
                dropped_between = true;
                break;
            }
        }
        assert!(dropped_between, "never dropped between the two awaits");
        // Dropped there. The next write undoes the transaction left open.
        let _ = writer.lock().await.unwrap();
        assert!(
            lock_is_free(dir).await,
            "a transaction nobody holds keeps the write lock"
        );
        insert(writer.clone(), 1).await;
        assert_eq!(count(writer).await, 1);
        assert!(lock_is_free(dir).await, "the insert was not committed");
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

    /// Inserts `n` into `t` through `writer`, in a write of its own.
    async fn insert(writer: Writer, n: i64) {
        sqlx::query("INSERT INTO t VALUES (?)")
            .bind(n)
            .execute(&mut *writer.lock().await.unwrap())
            .await
            .unwrap();
    }

    async fn rows(writer: &Writer) -> Vec<i64> {
        sqlx::query_scalar("SELECT n FROM t ORDER BY rowid")
            .fetch_all(&mut *writer.lock().await.unwrap())
            .await
            .unwrap()
    }

    /// The heartbeat's writes wait for at most the write that holds the connection and
    /// one queued, however many are queued.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_of_the_first_lane_waits_behind_at_most_one_queued() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir, Arc::default()).await;
        let first = writer.dedicated().expect("a writer of its own");
        let settle = || tokio::time::sleep(std::time::Duration::from_millis(50));

        let mut conn = writer.lock().await.unwrap();
        let tx = begin_inserting(&mut conn, 1).await;
        let mut writes = Vec::new();
        for n in [3, 4, 5] {
            writes.push(tokio::spawn(insert(writer.clone(), n)));
            settle().await;
        }
        writes.push(tokio::spawn(insert(first, 2)));
        settle().await;
        tx.commit().await.unwrap();
        drop(conn);
        for write in writes {
            write.await.unwrap();
        }
        assert_eq!(rows(&writer).await, [1, 3, 2, 4, 5]);
    }

    /// And back to back, they let the queued writes through: each waits behind them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_of_the_first_lane_back_to_back_starve_no_other_write() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir, Arc::default()).await;
        let first = writer.dedicated().expect("a writer of its own");
        let (started, wait) = tokio::sync::oneshot::channel();
        let heartbeats = tokio::spawn(async move {
            insert(first.clone(), 100).await;
            started.send(()).unwrap();
            for n in 101..600 {
                insert(first.clone(), n).await;
            }
        });
        wait.await.unwrap();
        insert(writer.clone(), 1).await;
        heartbeats.await.unwrap();
        let rows = rows(&writer).await;
        let at = rows.iter().position(|&n| n == 1).unwrap();
        assert!(at <= 4, "the other write went in at {at} of {}", rows.len());
    }
}
