//! How a client built from a URL connects: pool sizes, waits and SQLite's durability.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How a [`Jobs`](crate::Jobs) client built from a URL connects
/// ([`JobsBuilder::connect_options`](crate::JobsBuilder::connect_options)). A client on
/// the application's own pool uses that pool as it is.
///
/// ```
/// use std::time::Duration;
/// use jobs_core::{ConnectOptions, SqliteSynchronous};
///
/// let options = ConnectOptions::default()
///     .max_connections(20)
///     .acquire_timeout(Duration::from_secs(5))
///     .sqlite_synchronous(SqliteSynchronous::Full);
/// assert_eq!(options.sqlite_readers, 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// PostgreSQL: the most connections in the pool (default 10), shared by the client,
    /// the worker servers and the dashboard of this process; the listener for
    /// `LISTEN/NOTIFY` holds one more of its own.
    pub max_connections: u32,
    /// How long a statement waits for a free pooled connection before it fails
    /// (default 30 s): the PostgreSQL pool, and SQLite's pool of readers.
    pub acquire_timeout: Duration,
    /// SQLite: when a commit waits for the disk (default [`SqliteSynchronous::Normal`]).
    pub sqlite_synchronous: SqliteSynchronous,
    /// SQLite: read-only connections for the dashboard and other reads (default 4).
    /// Writes go through one connection of their own regardless.
    pub sqlite_readers: u32,
    /// PostgreSQL: claims and results wait for their commit to reach the disk (default
    /// `false`). By default they commit asynchronously (enqueues never do): a crash of
    /// the database server may lose the last few hundred milliseconds of them, so a job
    /// whose claim was lost runs again, and one whose result was lost runs again after
    /// its lease, as at-least-once allows; in exchange a claim does not wait for a disk
    /// flush. Set it where a job that finished must never run again after a database
    /// crash. Applies to an application's own pool too.
    pub postgres_durable_commits: bool,
    /// PostgreSQL: the schema this library's tables live in (default: none set, so the
    /// first of the role's `search_path`, usually `public`). Two applications with a
    /// schema each share one database without seeing each other's jobs, servers,
    /// recurring jobs or wake-ups; each one's dashboard and tools show its own. The
    /// schema is created when missing; every connection of the client's pools has it as
    /// its only `search_path`. A lowercase SQL identifier: letters, digits and `_`, at
    /// most 63 bytes, not starting with a digit or `pg_`. On an application's own pool,
    /// set `search_path` in that pool's options instead.
    pub postgres_schema: Option<String>,
}

/// SQLite's `PRAGMA synchronous` in WAL mode: how durable a commit is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SqliteSynchronous {
    /// The write-ahead log is synced at checkpoints, not at each commit; a client on a
    /// URL checkpoints off the write path within about a second of a write. A crash of
    /// the application loses nothing committed; a power loss or OS crash may lose the
    /// last transactions (never corrupts the file). Much faster commits.
    #[default]
    Normal,
    /// Every commit waits until the log is on disk: a commit survives a power loss too.
    Full,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(30),
            sqlite_synchronous: SqliteSynchronous::Normal,
            sqlite_readers: 4,
            postgres_durable_commits: false,
            postgres_schema: None,
        }
    }
}

impl ConnectOptions {
    /// Sets [`max_connections`](Self::max_connections).
    pub fn max_connections(mut self, connections: u32) -> Self {
        self.max_connections = connections;
        self
    }

    /// Sets [`acquire_timeout`](Self::acquire_timeout).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Sets [`sqlite_synchronous`](Self::sqlite_synchronous).
    pub fn sqlite_synchronous(mut self, synchronous: SqliteSynchronous) -> Self {
        self.sqlite_synchronous = synchronous;
        self
    }

    /// Sets [`sqlite_readers`](Self::sqlite_readers).
    pub fn sqlite_readers(mut self, readers: u32) -> Self {
        self.sqlite_readers = readers;
        self
    }

    /// Sets [`postgres_durable_commits`](Self::postgres_durable_commits).
    pub fn postgres_durable_commits(mut self, durable: bool) -> Self {
        self.postgres_durable_commits = durable;
        self
    }

    /// Sets [`postgres_schema`](Self::postgres_schema).
    pub fn postgres_schema(mut self, schema: impl Into<String>) -> Self {
        self.postgres_schema = Some(schema.into());
        self
    }

    pub(crate) fn check(&self) -> Result<()> {
        if let Some(schema) = &self.postgres_schema {
            jobs_grammar::check_schema_name(schema)
                .map_err(|error| Error::Config(format!("postgres_schema: {error}")))?;
        }
        if self.max_connections == 0 {
            return Err(Error::Config("max_connections must be at least 1".into()));
        }
        if self.sqlite_readers == 0 {
            return Err(Error::Config("sqlite_readers must be at least 1".into()));
        }
        if self.acquire_timeout.is_zero() {
            return Err(Error::Config("acquire_timeout must be above zero".into()));
        }
        Ok(())
    }
}
