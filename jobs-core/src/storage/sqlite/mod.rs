//! SQLite storage: one file, WAL, a single writer connection.
//!
//! SQLite allows one writer at a time. Funnelling every write of this process through one
//! connection turns contention inside the process into a queue instead of
//! `SQLITE_BUSY` retries; writes from other processes on the same file wait on the busy
//! timeout. Reads use their own pool and, thanks to WAL, never wait for the writer.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Sqlite, SqliteConnection};
use tokio_util::sync::DropGuard;

pub(crate) use self::lifecycle::jobs_insert_with;
pub(crate) use self::unique::jobs_admit_with;
pub(crate) use self::writer::AfterConnect;
use self::writer::Writer;
use super::{Schema, migrate};
use crate::{ConnectOptions, Result};

mod admin;
mod batches;
mod checkpoint;
mod claim;
mod continuations;
#[cfg(test)]
mod count_tests;
#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod label_tests;
mod lifecycle;
#[cfg(test)]
mod plan_tests;
mod rates;
mod recurring;
mod rows;
mod running;
mod servers;
mod signals;
mod tools;
mod unique;
mod writer;

/// SQLite's limit on bound parameters per statement is 32,766; stay well under it.
const ROWS_PER_INSERT: usize = 500;

#[derive(Debug, Clone)]
pub(crate) struct SqliteStorage {
    writer: Writer,
    reader: SqlitePool,
    /// Stops the checkpoints off the write path once the last clone is dropped; `None`
    /// on a pool (the application's, or an in-memory database).
    checkpoints: Option<Arc<DropGuard>>,
}

impl SqliteStorage {
    /// Opens (and creates) the database file named by `url`; `after_connect` runs on the
    /// writer's connection each time it is opened.
    pub(crate) async fn connect(
        url: &str,
        connect: &ConnectOptions,
        after_connect: Option<AfterConnect>,
    ) -> Result<Self> {
        let base = SqliteConnectOptions::from_str(url)?.busy_timeout(Duration::from_secs(30));
        let synchronous = match connect.sqlite_synchronous {
            crate::SqliteSynchronous::Full => SqliteSynchronous::Full,
            crate::SqliteSynchronous::Normal => SqliteSynchronous::Normal,
        };
        let options = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if in_memory {
            // Every connection to `:memory:` is a database of its own: keep exactly one,
            // for reads and writes alike.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .test_before_acquire(false)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await?;
            return Ok(Self {
                writer: Writer::Pool(pool.clone()),
                reader: pool,
                checkpoints: None,
            });
        }
        let writer = Writer::open(options.clone(), after_connect).await?;
        let checkpoints = Some(Arc::new(checkpoint::start(&options).await?));
        // No ping before each use: a connection to a local file does not go stale, and
        // the ping is a round trip to SQLite's thread that every statement would wait for.
        let reader = SqlitePoolOptions::new()
            .max_connections(connect.sqlite_readers)
            .acquire_timeout(connect.acquire_timeout)
            .test_before_acquire(false)
            .connect_with(base.read_only(true))
            .await?;
        Ok(Self {
            writer,
            reader,
            checkpoints,
        })
    }

    /// Uses the application's pool for reads and writes.
    pub(crate) fn from_pool(pool: SqlitePool) -> Self {
        Self {
            writer: Writer::Pool(pool.clone()),
            reader: pool,
            checkpoints: None,
        }
    }

    /// The same writer, with reads on a pool of their own (see `AnyStorage::reads_apart`).
    pub(crate) fn reads_apart(&self, max_connections: u32, _name: &str) -> Self {
        if matches!(self.writer, Writer::Pool(_)) {
            return self.clone();
        }
        let reader = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(self.reader.options().get_acquire_timeout())
            .test_before_acquire(false)
            .connect_lazy_with((*self.reader.connect_options()).clone());
        Self {
            writer: self.writer.clone(),
            reader,
            checkpoints: self.checkpoints.clone(),
        }
    }

    /// A handle for the server's heartbeat whose writes go before the process's other
    /// writes queued for the write connection (see `writer.rs`), so that it never
    /// waits behind more than two of them. A storage on a pool (the application's, or
    /// in memory) shares that pool.
    pub(crate) fn dedicated(&self) -> Self {
        let Some(writer) = self.writer.dedicated() else {
            return self.clone();
        };
        // The heartbeat reads nothing: a pool that opens its connection if ever used.
        let reader = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_lazy_with((*self.reader.connect_options()).clone());
        Self {
            writer,
            reader,
            checkpoints: self.checkpoints.clone(),
        }
    }

    /// Notes the result of a call, so that a write connection that broke is replaced.
    pub(crate) fn observe<T>(&self, result: Result<T>) -> Result<T> {
        self.writer.observe(&result);
        result
    }
}

/// Starts a transaction that takes the write lock up front, so that one that reads then
/// writes never fails half-way with `SQLITE_BUSY` when another process writes.
async fn begin(conn: &mut SqliteConnection) -> Result<sqlx::Transaction<'_, Sqlite>> {
    Ok(conn.begin_with("BEGIN IMMEDIATE").await?)
}

/// `rows` followed by empty rows up to the next power of two (or [`ROWS_PER_INSERT`]):
/// statements built for batches of any size then come in a dozen shapes, which stay in
/// the connection's statement cache, instead of one shape per size, each prepared anew.
/// An empty row binds only NULLs, which match no job and are filtered out of inserts.
fn padded<T>(rows: &[T]) -> impl Iterator<Item = Option<&T>> {
    let shape = rows.len().next_power_of_two().min(ROWS_PER_INSERT);
    rows.iter()
        .map(Some)
        .chain(std::iter::repeat_with(|| None))
        .take(shape.max(rows.len()))
}

impl Schema for SqliteStorage {
    async fn migrate(&self) -> Result<()> {
        if migrate::is_current(&self.reader, &migrate::SQLITE).await? {
            return Ok(());
        }
        let mut writer = self.writer.lock().await?;
        // SQLite runs every script in the one transaction: nothing comes back apart.
        migrate::run(begin(&mut writer).await?, &migrate::SQLITE)
            .await
            .map(drop)
    }
}

/// The steps of SQLite's plan for `explained` (a statement after `EXPLAIN QUERY PLAN`),
/// for the tests of what a statement reads.
#[cfg(test)]
async fn query_plan<'q>(
    storage: &SqliteStorage,
    explained: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
) -> Vec<String> {
    use sqlx::Row;
    explained
        .fetch_all(&storage.reader)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<String, _>("detail"))
        .collect()
}
