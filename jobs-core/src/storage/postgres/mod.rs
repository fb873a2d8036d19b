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

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub(crate) use self::lifecycle::jobs_insert_with;
use self::listener::Wakeups;
use super::{Schema, migrate};
use crate::Result;

mod admin;
mod continuations;
mod lifecycle;
mod listener;
mod recurring;
mod rows;
mod running;
mod servers;

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

/// A pooled connection idle this long is pinged before it is used again.
const IDLE_BEFORE_PING: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, Clone)]
pub(crate) struct PgStorage {
    pool: PgPool,
    wakeups: Arc<Wakeups>,
}

impl PgStorage {
    /// Connects a pool to the database named by `url`.
    pub(crate) async fn connect(url: &str, connect: &crate::ConnectOptions) -> Result<Self> {
        let mut options: PgConnectOptions = url.parse()?;
        if options.get_application_name().is_none() {
            options = options.application_name("jobs");
        }
        // A ping before every use costs each statement a second round trip. Only a
        // connection idle for a while is checked: it may have been cut (a restart of the
        // server, a proxy's idle timeout) while nobody used it. One that broke while in
        // use is closed when it comes back, after sqlx's check on release.
        let pool = PgPoolOptions::new()
            .max_connections(connect.max_connections)
            .acquire_timeout(connect.acquire_timeout)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_BEFORE_PING {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self::from_pool(pool))
    }

    /// Uses the application's pool.
    pub(crate) fn from_pool(pool: PgPool) -> Self {
        Self {
            wakeups: Arc::new(Wakeups::new(&pool)),
            pool,
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

impl Schema for PgStorage {
    async fn migrate(&self) -> Result<()> {
        migrate::run(self.pool.begin().await?, &migrate::POSTGRES).await
    }
}
