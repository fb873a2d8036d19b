//! The databases the figures run on: a fresh one for every measurement, removed after,
//! reached either through a `jobs` client or through plain sqlx pools opened with the
//! same settings the library uses.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use jobs::Jobs;
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, PgConnection, SqliteConnection};
use tokio::time::Instant;

/// A kind of database the library stores jobs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Backend {
    /// A file, in WAL mode.
    Sqlite,
    /// A server.
    Postgres,
}

impl Backend {
    /// How the command line and the JSON name it.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// How the table names it.
    pub(crate) fn title(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }

    /// The backend a database URL points at.
    pub(crate) fn of_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            bail!("not a sqlite: or postgres: URL: {url}")
        }
    }
}

/// Numbers the PostgreSQL databases of one run.
static NEXT_DATABASE: AtomicU64 = AtomicU64::new(0);

/// A database for one measurement, so no figure inherits another's rows, dead tuples or
/// cache: a file in a temporary directory, or a PostgreSQL database created for it and
/// dropped afterwards (from `Drop` too, so an error does not leave it behind).
#[derive(Debug)]
pub(crate) struct Scratch {
    backend: Backend,
    url: String,
    place: Place,
}

#[derive(Debug)]
enum Place {
    /// Deleted with its file when dropped.
    Sqlite(Option<tempfile::TempDir>),
    Postgres {
        admin_url: String,
        name: String,
        dropped: bool,
    },
}

impl Scratch {
    /// Creates an empty database; `pg_admin_url` is where PostgreSQL databases are created.
    pub(crate) async fn create(backend: Backend, pg_admin_url: &str) -> Result<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::Builder::new().prefix("jobs-bench-").tempdir()?;
                let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
                Ok(Self {
                    backend,
                    url,
                    place: Place::Sqlite(Some(dir)),
                })
            }
            Backend::Postgres => {
                let name = format!(
                    "jobs_bench_{}_{}",
                    std::process::id(),
                    NEXT_DATABASE.fetch_add(1, Ordering::Relaxed)
                );
                let mut admin = PgConnection::connect(pg_admin_url).await.with_context(|| {
                    format!("connecting to PostgreSQL at {}", redacted(pg_admin_url))
                })?;
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await?;
                admin.close().await?;
                Ok(Self {
                    backend,
                    url: with_database(pg_admin_url, &name)?,
                    place: Place::Postgres {
                        admin_url: pg_admin_url.to_owned(),
                        name,
                        dropped: false,
                    },
                })
            }
        }
    }

    /// Its URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// A `jobs` client, as an application opens it (which also migrates).
    pub(crate) async fn jobs(&self) -> Result<Jobs> {
        Ok(Jobs::connect(&self.url).await?)
    }

    /// The schema, without keeping a client open: for figures that then work on the
    /// tables with plain sqlx.
    pub(crate) async fn migrate(&self) -> Result<()> {
        Client::open(self, None).await?.close().await;
        Ok(())
    }

    /// The schema for plain sqlx to write to: the library's tables without the triggers
    /// that write the library's own bookkeeping (the history rows on SQLite, the counts
    /// by state on both), because the baselines keep none and the list figure generates
    /// its table without them.
    pub(crate) async fn migrate_plain(&self) -> Result<()> {
        self.migrate().await?;
        let mut raw = Raw::connect(&self.url).await?;
        raw.drop_counters().await?;
        if let Raw::Sqlite(conn) = &mut raw {
            for trigger in [
                "jobs_job_created",
                "jobs_job_claimed",
                "jobs_job_start_kept",
            ] {
                sqlx::query(&format!("DROP TRIGGER {trigger}"))
                    .execute(&mut *conn)
                    .await?;
            }
        }
        raw.close().await
    }

    /// A counter of the transactions committed on this database.
    pub(crate) async fn commits(&self) -> Result<Commits> {
        match self.backend {
            Backend::Sqlite => Ok(Commits::Sqlite(Arc::default())),
            Backend::Postgres => Ok(Commits::Postgres(
                PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&self.url)
                    .await?,
            )),
        }
    }

    /// Drops the PostgreSQL database (closing its connections) or deletes the file.
    pub(crate) async fn remove(mut self) -> Result<()> {
        match &mut self.place {
            Place::Sqlite(dir) => {
                if let Some(dir) = dir.take() {
                    dir.close()?;
                }
            }
            Place::Postgres {
                admin_url,
                name,
                dropped,
            } => {
                drop_database(admin_url, name).await?;
                *dropped = true;
            }
        }
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let Place::Postgres {
            admin_url,
            name,
            dropped: false,
        } = &self.place
        else {
            return;
        };
        // Left by an error: drop it on a runtime of its own, as `Drop` cannot await.
        let (admin_url, name) = (admin_url.clone(), name.clone());
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|runtime| runtime.block_on(drop_database(&admin_url, &name)))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop a benchmark database; drop it by hand");
        }
    }
}

async fn drop_database(admin_url: &str, name: &str) -> Result<()> {
    let mut admin = PgConnection::connect(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    Ok(())
}

/// `url` with its password, if any, replaced by `***`: the command is printed and saved.
pub(crate) fn redacted(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|at| at + 3) else {
        return url.to_owned();
    };
    let Some(at) = url[scheme_end..].find('@').map(|at| scheme_end + at) else {
        return url.to_owned();
    };
    match url[scheme_end..at].find(':') {
        Some(colon) => format!("{}:***{}", &url[..scheme_end + colon], &url[at..]),
        None => url.to_owned(),
    }
}

/// `url` with its database (path) replaced by `name`, query string kept.
fn with_database(url: &str, name: &str) -> Result<String> {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let host_start = base.find("://").context("a URL with a scheme")? + 3;
    let server = match base[host_start..].find('/') {
        Some(slash) => &base[..host_start + slash],
        None => base,
    };
    Ok(match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    })
}

/// The connection settings `jobs` uses for a SQLite file: WAL, `synchronous = NORMAL`,
/// a 30 s busy timeout.
pub(crate) fn sqlite_options(url: &str) -> Result<SqliteConnectOptions> {
    Ok(SqliteConnectOptions::from_str(url)?
        .busy_timeout(Duration::from_secs(30))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal))
}

/// A plain sqlx connection of its own on a scratch database, with the settings the
/// library uses but without a pool (whose check and hand-over cost every use a little):
/// the best plain sqlx does.
#[derive(Debug)]
pub(crate) enum Raw {
    /// WAL, `synchronous = NORMAL`, the busy timeout.
    Sqlite(SqliteConnection),
    /// Default settings.
    Postgres(PgConnection),
}

impl Raw {
    /// Runs one statement (no parameters).
    pub(crate) async fn execute(&mut self, sql: &str) -> Result<()> {
        match self {
            Raw::Sqlite(conn) => {
                sqlx::query(sql).execute(conn).await?;
            }
            Raw::Postgres(conn) => {
                sqlx::query(sql).execute(conn).await?;
            }
        }
        Ok(())
    }

    /// Drops the triggers that keep the counts by state (SQLite migration 30,
    /// PostgreSQL 38): the baselines count nothing.
    pub(crate) async fn drop_counters(&mut self) -> Result<()> {
        for trigger in [
            "jobs_job_counted_in",
            "jobs_job_counted_moved",
            "jobs_job_counted_out",
        ] {
            match self {
                Raw::Sqlite(_) => self.execute(&format!("DROP TRIGGER {trigger}")).await?,
                Raw::Postgres(_) => {
                    self.execute(&format!("DROP TRIGGER {trigger} ON jobs_job"))
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Connects to `url`.
    pub(crate) async fn connect(url: &str) -> Result<Self> {
        Ok(match Backend::of_url(url)? {
            Backend::Sqlite => {
                Raw::Sqlite(SqliteConnection::connect_with(&sqlite_options(url)?).await?)
            }
            Backend::Postgres => Raw::Postgres(PgConnection::connect(url).await?),
        })
    }

    /// How many jobs are in `state`.
    pub(crate) async fn count(&mut self, state: &str) -> Result<i64> {
        self.count_in("jobs_job", state).await
    }

    /// How many rows of `table` are in `state`.
    pub(crate) async fn count_in(&mut self, table: &str, state: &str) -> Result<i64> {
        let sql = format!("SELECT count(*) FROM {table} WHERE state = $1");
        Ok(match self {
            Raw::Sqlite(conn) => sqlx::query_scalar(&sql).bind(state).fetch_one(conn).await?,
            Raw::Postgres(conn) => sqlx::query_scalar(&sql).bind(state).fetch_one(conn).await?,
        })
    }

    /// How many jobs named `name` are in `state`.
    pub(crate) async fn count_named(&mut self, state: &str, name: &str) -> Result<i64> {
        Ok(match self {
            Raw::Sqlite(conn) => {
                sqlx::query_scalar("SELECT count(*) FROM jobs_job WHERE state = ? AND name = ?")
                    .bind(state)
                    .bind(name)
                    .fetch_one(conn)
                    .await?
            }
            Raw::Postgres(conn) => {
                sqlx::query_scalar("SELECT count(*) FROM jobs_job WHERE state = $1 AND name = $2")
                    .bind(state)
                    .bind(name)
                    .fetch_one(conn)
                    .await?
            }
        })
    }

    /// History rows that hold a backtrace.
    pub(crate) async fn count_backtraces(&mut self) -> Result<i64> {
        let sql = "SELECT count(*) FROM jobs_event WHERE backtrace IS NOT NULL";
        Ok(match self {
            Raw::Sqlite(conn) => sqlx::query_scalar(sql).fetch_one(conn).await?,
            Raw::Postgres(conn) => sqlx::query_scalar(sql).fetch_one(conn).await?,
        })
    }

    /// Waits until no job is `Enqueued` or `Processing`: every result is recorded.
    pub(crate) async fn settled(&mut self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        while self.count("Processing").await? + self.count("Enqueued").await? > 0 {
            if Instant::now() > deadline {
                bail!("jobs still unfinished after {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// Closes the connection.
    pub(crate) async fn close(self) -> Result<()> {
        match self {
            Raw::Sqlite(conn) => conn.close().await?,
            Raw::Postgres(conn) => conn.close().await?,
        }
        Ok(())
    }
}

/// A `jobs` client configured as `Jobs::connect` configures one, so that this program can
/// count its commits (SQLite) and close its pool for certain when done (PostgreSQL).
#[derive(Debug)]
pub(crate) struct Client {
    /// The client.
    pub(crate) jobs: Jobs,
    pool: Option<PgPool>,
}

impl Client {
    /// A client counting its SQLite commits into `commits`. SQLite: `Jobs::connect` on the
    /// URL, with a commit hook on its write connection. PostgreSQL: 10 connections named
    /// `jobs`, as `Jobs::connect` opens, none pinged before each use (`Jobs::connect`'s
    /// pool pings only one idle for seconds, which never happens while a figure runs).
    pub(crate) async fn open(scratch: &Scratch, commits: Option<&Commits>) -> Result<Self> {
        Self::open_with(scratch, commits, false).await
    }

    /// [`open`](Self::open), with PostgreSQL's claims and results committed durably
    /// when `durable`.
    pub(crate) async fn open_with(
        scratch: &Scratch,
        commits: Option<&Commits>,
        durable: bool,
    ) -> Result<Self> {
        let builder = Jobs::builder()
            .connect_options(jobs::ConnectOptions::default().postgres_durable_commits(durable));
        let (builder, pool) = match scratch.backend {
            Backend::Sqlite => {
                let counter = match commits {
                    Some(Commits::Sqlite(counter)) => Some(counter.clone()),
                    _ => None,
                };
                let builder = builder
                    .url(scratch.url.clone())
                    .sqlite_writer_after_connect(move |conn| {
                        let counter = counter.clone();
                        Box::pin(async move {
                            if let Some(counter) = counter {
                                conn.lock_handle().await?.set_commit_hook(move || {
                                    counter.fetch_add(1, Ordering::Relaxed);
                                    true
                                });
                            }
                            Ok(())
                        })
                    });
                (builder, None)
            }
            Backend::Postgres => {
                let options = PgConnectOptions::from_str(&scratch.url)?.application_name("jobs");
                let pool = PgPoolOptions::new()
                    .max_connections(10)
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await?;
                (builder.postgres_pool(pool.clone()), Some(pool))
            }
        };
        Ok(Self {
            jobs: builder.connect().await?,
            pool,
        })
    }

    /// Drops the client and closes its pool.
    pub(crate) async fn close(self) {
        drop(self.jobs);
        if let Some(pool) = self.pool {
            pool.close().await;
        }
    }
}

/// Counts the transactions committed on a database.
#[derive(Debug)]
pub(crate) enum Commits {
    /// Write transactions committed through the [`Client`] given this counter.
    Sqlite(Arc<AtomicU64>),
    /// `pg_stat_database.xact_commit` of the database (every transaction, read-only ones
    /// included), read through a connection of its own.
    Postgres(PgPool),
}

impl Commits {
    /// The count so far. On PostgreSQL this first waits until no other client is
    /// connected to the database: a backend reports its counts when it exits (or after a
    /// second of idling), so only then is the figure complete.
    pub(crate) async fn read(&self) -> Result<u64> {
        match self {
            Commits::Sqlite(counter) => Ok(counter.load(Ordering::Relaxed)),
            Commits::Postgres(pool) => {
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    let others: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM pg_stat_activity \
                         WHERE datname = current_database() AND pid <> pg_backend_pid() \
                             AND backend_type = 'client backend'",
                    )
                    .fetch_one(pool)
                    .await?;
                    if others == 0 {
                        break;
                    }
                    if Instant::now() > deadline {
                        bail!("{others} connections stayed open; cannot count commits");
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let commits: i64 = sqlx::query_scalar(
                    "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
                )
                .fetch_one(pool)
                .await?;
                Ok(u64::try_from(commits).unwrap_or(0))
            }
        }
    }

    /// Closes the counter's own connection.
    pub(crate) async fn close(self) {
        if let Commits::Postgres(pool) = self {
            pool.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(
            super::redacted("postgres://app:secret@db:5432/jobs"),
            "postgres://app:***@db:5432/jobs"
        );
        assert_eq!(
            super::redacted("postgres://app@db/jobs"),
            "postgres://app@db/jobs"
        );
    }

    #[test]
    fn database_is_replaced_and_options_kept() {
        let url = |u| with_database(u, "b").unwrap();
        assert_eq!(url("postgres://u@h:5432/postgres"), "postgres://u@h:5432/b");
        assert_eq!(url("postgres://u@h"), "postgres://u@h/b");
        assert_eq!(
            url("postgres://u@h/a?sslmode=disable"),
            "postgres://u@h/b?sslmode=disable"
        );
    }
}
