//! PostgreSQL storage: many servers on one database.
//!
//! Each operation is one statement where it can be, so it costs one round trip and one
//! commit: a claim picks rows with `FOR UPDATE SKIP LOCKED`, updates them and writes their
//! history in one `WITH`; a batch of results travels as arrays through `UNNEST`.
//!
//! Statements that update many `Processing` rows (results, heartbeats, release) lock them
//! in id order first. Without that, a server's heartbeat and its own result batch (or
//! another server's rescue) could lock the same rows in opposite orders and deadlock.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub(crate) use self::lifecycle::jobs_insert_with;
use self::listener::Wakeups;
pub(crate) use self::unique::jobs_admit_with;
use super::{Schema, migrate};
use crate::Result;

mod admin;
mod batches;
#[cfg(test)]
mod begin_tests;
mod claim;
mod continuations;
#[cfg(test)]
mod count_tests;
#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod key_tests;
#[cfg(test)]
mod label_tests;
mod lifecycle;
mod listener;
#[cfg(test)]
mod migrate_tests;
#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod rate_tests;
mod rates;
mod recurring;
mod rows;
mod running;
mod servers;
mod signals;
mod tools;
mod unique;

/// Makes the surrounding transaction commit without waiting for its WAL to reach the
/// disk; part of the statement, so that a claim or a batch of results stays one round
/// trip. For claims and results only, never for enqueues, whose caller was told the job
/// is stored.
///
/// What a crash can lose this way is the last few hundred milliseconds of such commits
/// (never a part of one, and never one that a later durable commit depends on: the WAL
/// is flushed in order). A lost claim puts the job back to `Enqueued` or `Scheduled`, so
/// it runs again; a lost result leaves it `Processing` under its old owner until the
/// lease runs out and the rescue counts the attempt as failed and retries it. Both are
/// exactly what a crash of the server a moment earlier does (results wait in memory for
/// their batch), and both keep the documented guarantee: every job runs at least once.
/// In exchange a claim does not wait for a disk flush, which on a slow disk bounded a
/// server to a few hundred claims per second.
const ASYNC_COMMIT: &str = "SELECT set_config('synchronous_commit', 'off', true)";

/// What stands for [`ASYNC_COMMIT`] with durable commits: the same shape (one text
/// value), changing nothing.
const KEEP_COMMIT: &str = "SELECT current_setting('synchronous_commit')";

/// A pooled connection idle this long is pinged before it is used again.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(5);

/// Longest a statement of the pool may run before the database cancels it.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest wait for a returned connection to answer before it is closed.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub(crate) struct PgStorage {
    pool: PgPool,
    wakeups: Arc<Wakeups>,
    /// Whether claims and results wait for their commit to reach the disk
    /// (`ConnectOptions::postgres_durable_commits`).
    durable: bool,
}

impl PgStorage {
    /// Connects a pool to the database named by `url`.
    pub(crate) async fn connect(url: &str, connect: &crate::ConnectOptions) -> Result<Self> {
        let mut options: PgConnectOptions = url.parse()?;
        if options.get_application_name().is_none() {
            options = options.application_name("jobs");
        }
        if let Some(schema) = &connect.postgres_schema {
            create_schema(&options, schema).await?;
            options = options.options([("search_path", schema.as_str())]);
        }
        let pool = pool_options(connect.max_connections, connect.acquire_timeout)
            .connect_with(with_statement_timeout(options, STATEMENT_TIMEOUT))
            .await?;
        Ok(Self::from_pool(pool).durable(connect.postgres_durable_commits))
    }

    /// With claims and results committed durably (`true`) or asynchronously.
    pub(crate) fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// The statement that sets how a claim's or a batch of results' commit waits.
    fn commit_mode(&self) -> &'static str {
        if self.durable {
            KEEP_COMMIT
        } else {
            ASYNC_COMMIT
        }
    }

    /// A handle of its own for the server's heartbeat: a pool of one connection with the
    /// same options, whose waits and statements are bounded by `bound`, so that a busy
    /// main pool never delays it. It shares this storage's wake-ups.
    pub(crate) async fn dedicated(&self, bound: Duration) -> Result<Self> {
        let options = (*self.pool.connect_options()).clone();
        let pool = pool_options(1, bound).connect_lazy_with(with_statement_timeout(options, bound));
        Ok(Self {
            pool,
            wakeups: self.wakeups.clone(),
            durable: self.durable,
        })
    }

    /// A pool of its own of `max_connections` with the same options, its connections
    /// named `name` in `pg_stat_activity`, sharing this storage's wake-ups (see
    /// `AnyStorage::reads_apart`).
    pub(crate) fn reads_apart(&self, max_connections: u32, name: &str) -> Self {
        let options = (*self.pool.connect_options())
            .clone()
            .application_name(name);
        let pool = pool_options(max_connections, self.pool.options().get_acquire_timeout())
            .connect_lazy_with(options);
        Self {
            pool,
            wakeups: self.wakeups.clone(),
            durable: self.durable,
        }
    }

    /// Uses the application's pool.
    pub(crate) fn from_pool(pool: PgPool) -> Self {
        Self {
            wakeups: Arc::new(Wakeups::new(&pool)),
            pool,
            durable: false,
        }
    }

    /// Changes whenever any process may have enqueued jobs on this database.
    pub(crate) fn wakeups(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.wakeups.subscribe())
    }

    /// Changes whenever any process may have deleted jobs on this database.
    pub(crate) fn deletions(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.wakeups.subscribe_deletions())
    }
}

/// A transaction on a connection of `pool`, begun to the end even if the caller is
/// dropped first (a storage call's timeout). sqlx's `begin` counts the transaction only
/// once `BEGIN` is answered: dropped before that, it put the connection back in the pool
/// inside a transaction nobody would end, and every later statement on that connection
/// (a claim, a result) joined it, uncommitted and invisible to other connections. Run
/// in a task of its own, the begin completes; a `Transaction` nobody takes is dropped
/// with the task's output, which rolls it back.
pub(crate) async fn begin(pool: &PgPool) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let pool = pool.clone();
    match tokio::spawn(async move { pool.begin().await }).await {
        Ok(begun) => Ok(begun?),
        Err(error) => Err(sqlx::Error::Io(std::io::Error::other(error)).into()),
    }
}

/// Creates `schema` (a name `ConnectOptions::check` let through) if it does not exist,
/// on a connection of its own: a schema that exists needs no `CREATE` right.
async fn create_schema(options: &PgConnectOptions, schema: &str) -> Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect_with(options).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(schema)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        // Quoted, though the name is a plain identifier already.
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .execute(&mut conn)
            .await?;
    }
    conn.close().await?;
    Ok(())
}

/// `statement_timeout` set on every connection opened with these options.
fn with_statement_timeout(options: PgConnectOptions, timeout: Duration) -> PgConnectOptions {
    // PostgreSQL takes up to `i32::MAX` milliseconds (24 days).
    let millis = timeout.as_millis().clamp(1, i32::MAX as u128).to_string();
    options.options([("statement_timeout", millis.as_str())])
}

/// The options of the storage's pools.
///
/// A ping before every use costs each statement a second round trip. Only a
/// connection idle for a while is checked: it may have been cut (a restart of the
/// server, a proxy's idle timeout) while nobody used it.
///
/// A connection comes back to the pool after each use, and sqlx then pings it to drain
/// what a cancelled statement left (a caller that timed out drops its statement's
/// future midway): one that fails the ping is closed, never reused half-read. That ping
/// has no time limit of its own, so on a connection that stopped answering (a
/// blackholed network) it would hold its slot until TCP gives up, minutes later, and
/// fill the pool; a bounded ping first closes such a connection after
/// [`RELEASE_TIMEOUT`].
fn pool_options(max: u32, acquire: Duration) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(acquire)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_BEFORE_PING {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .after_release(|conn, _| {
            Box::pin(async move {
                match tokio::time::timeout(RELEASE_TIMEOUT, sqlx::Connection::ping(conn)).await {
                    Ok(Ok(())) => Ok(true),
                    Ok(Err(error)) => Err(error),
                    Err(_) => Err(sqlx::Error::PoolTimedOut),
                }
            })
        })
}

impl Schema for PgStorage {
    async fn migrate(&self) -> Result<()> {
        migrate::postgres(&self.pool, &migrate::POSTGRES).await
    }
}
