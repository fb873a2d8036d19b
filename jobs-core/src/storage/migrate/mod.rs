//! The schema of each backend as an ordered list of embedded SQL scripts, and the one
//! runner that applies them.
//!
//! `jobs` keeps its own version table (`jobs_migration`) instead of sqlx's
//! `_sqlx_migrations`, because it often shares a database with the application's own
//! sqlx migrations, whose versions would collide with ours.

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Transaction, Type};

use crate::Result;

mod scripts;
#[cfg(feature = "postgres")]
use scripts::POSTGRES_SCRIPTS;
#[cfg(feature = "sqlite")]
use scripts::SQLITE_SCRIPTS;

/// One schema step: applied once, in order, inside the run's transaction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) description: &'static str,
    pub(crate) sql: &'static str,
    /// PostgreSQL: the script builds indexes `CONCURRENTLY` on tables that may be big,
    /// so it runs outside a transaction, statement by statement (see
    /// [`run_concurrently`]); the scripts before it commit first. SQLite runs it like
    /// any other, in the run's transaction.
    pub(crate) concurrent: bool,
}

/// What differs between the backends' runs: the scripts, the version table's DDL, the
/// placeholders, and how concurrent runs are kept apart.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// A statement that tries to take a lock held until the transaction ends and says
    /// whether it did, and the key it binds; `None` where beginning the transaction
    /// already takes the lock (SQLite's `BEGIN IMMEDIATE`). It is tried again until it
    /// succeeds (see [`LOCK_RETRY`]).
    lock: Option<(&'static str, i64)>,
    /// Whether `jobs_migration` exists (one boolean row).
    table_exists: &'static str,
    /// Creates `jobs_migration` if missing.
    create_table: &'static str,
    /// Records one applied script: binds its version and description.
    record: &'static str,
    /// Writes `jobs_compat` after a run: binds `needs`, the newest version and the
    /// release, keeping the highest `needs` stored.
    record_compat: &'static str,
    /// The lowest schema version a build must know to work on a schema this build
    /// migrated: the version of the last script that changed something older builds
    /// rely on (a contract step: a column dropped, renamed or retyped, a constraint
    /// they would break). Every script so far only adds, so it is the first version.
    needs: i64,
    /// Whether scripts marked `concurrent` run apart, outside a transaction
    /// (PostgreSQL), or in the run's transaction like the others (SQLite).
    concurrent_apart: bool,
    scripts: &'static [Migration],
}

impl Plan {
    /// The PostgreSQL plan with other scripts, for tests of the runner.
    #[cfg(all(test, feature = "postgres"))]
    pub(crate) const fn postgres_with(scripts: &'static [Migration]) -> Self {
        Self {
            scripts,
            ..POSTGRES
        }
    }

    /// The newest version this build knows.
    fn newest(&self) -> i64 {
        self.scripts.last().map_or(0, |script| script.version)
    }

    /// The versions of the scripts, in order.
    #[cfg(test)]
    fn versions(&self) -> Vec<i64> {
        self.scripts.iter().map(|script| script.version).collect()
    }
}

#[cfg(feature = "sqlite")]
pub(crate) const SQLITE: Plan = Plan {
    lock: None,
    table_exists: "SELECT EXISTS (SELECT 1 FROM sqlite_master \
                   WHERE type = 'table' AND name = 'jobs_migration')",
    create_table: "CREATE TABLE IF NOT EXISTS jobs_migration (
                version INTEGER PRIMARY KEY NOT NULL,
                description TEXT NOT NULL,
                applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    record: "INSERT INTO jobs_migration (version, description) VALUES (?, ?)",
    record_compat: "INSERT INTO jobs_compat (id, needs, version, release) VALUES (1, ?1, ?2, ?3) \
                    ON CONFLICT (id) DO UPDATE SET needs = max(jobs_compat.needs, excluded.needs), \
                        version = excluded.version, release = excluded.release",
    needs: 1,
    concurrent_apart: false,
    scripts: SQLITE_SCRIPTS,
};

/// How long a node waits before it tries the migration lock again. Nodes poll for the
/// lock instead of waiting in a statement: a statement that waits holds a snapshot, and
/// `CREATE INDEX CONCURRENTLY` (see [`run_concurrently`]) waits for every older
/// snapshot, so a node waiting for the lock its builder holds would deadlock with it.
#[cfg(feature = "postgres")]
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(50);

/// Key of the advisory lock that serializes migrations across processes.
#[cfg(feature = "postgres")]
const MIGRATION_LOCK: i64 = 0x6a6f_6273_5f6d_6967; // "jobs_mig"

/// Many nodes booting at once: the first migrates, the others wait on the advisory
/// lock, then find every version applied.
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES: Plan = Plan {
    lock: Some(("SELECT pg_try_advisory_xact_lock($1)", MIGRATION_LOCK)),
    table_exists: "SELECT to_regclass('jobs_migration') IS NOT NULL",
    create_table: "CREATE TABLE IF NOT EXISTS jobs_migration (
                version bigint PRIMARY KEY,
                description text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())",
    record: "INSERT INTO jobs_migration (version, description) VALUES ($1, $2)",
    record_compat: "INSERT INTO jobs_compat (id, needs, version, release) VALUES (1, $1, $2, $3) \
                    ON CONFLICT (id) DO UPDATE SET needs = greatest(jobs_compat.needs, excluded.needs), \
                        version = excluded.version, release = excluded.release",
    needs: 1,
    concurrent_apart: true,
    scripts: POSTGRES_SCRIPTS,
};

/// Whether every script of `plan` is applied already: read without a transaction or
/// a lock, so that a node that starts on a current schema (the usual start, and every
/// node of a rolling deploy after the first) neither waits for nor blocks anyone. Only
/// when this says no does the caller run [`run`], which takes the lock and reads again.
pub(crate) async fn is_current<DB>(pool: &sqlx::Pool<DB>, plan: &Plan) -> Result<bool>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> bool: Decode<'q, DB> + Type<DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    let mut conn = pool.acquire().await?;
    let exists: bool = sqlx::query_scalar(plan.table_exists)
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(false);
    }
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM jobs_migration")
        .fetch_all(&mut *conn)
        .await?;
    let current = plan
        .scripts
        .iter()
        .all(|script| applied.contains(&script.version));
    if current {
        check_newer(&mut conn, plan, &applied).await?;
    }
    Ok(current)
}

/// When `applied` holds versions this build does not know (a newer build migrated),
/// refuses a schema whose `jobs_compat.needs` is above the newest version this build
/// knows; a newer schema that only added is fine.
async fn check_newer<DB>(conn: &mut DB::Connection, plan: &Plan, applied: &[i64]) -> Result<()>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    let knows = plan.newest();
    let Some(&found) = applied.iter().filter(|version| **version > knows).max() else {
        return Ok(());
    };
    let stored: Option<(i64, String)> =
        sqlx::query_as("SELECT needs, release FROM jobs_compat WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await?;
    match stored {
        Some((needs, release)) if needs > knows => Err(crate::Error::SchemaTooNew {
            found,
            needs,
            knows,
            release,
        }),
        _ => Ok(()),
    }
}

/// Applies, inside `tx`, every script of `plan` whose version `jobs_migration` does not
/// list, in order, recording each; then commits. The whole run is one transaction: a
/// script that fails leaves the schema as it was. Where the plan runs `concurrent`
/// scripts apart, the run stops before the first pending one, commits what came before
/// it and returns it, for [`run_concurrently`]; the caller then runs again.
pub(crate) async fn run<DB>(
    mut tx: Transaction<'_, DB>,
    plan: &Plan,
) -> Result<Option<&'static Migration>>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    for<'q> bool: Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    if let Some((lock, key)) = plan.lock {
        // Between tries the transaction holds no snapshot (read committed).
        while !sqlx::query_scalar::<_, bool>(lock)
            .bind(key)
            .fetch_one(&mut *tx)
            .await?
        {
            retry_pause().await;
        }
    }
    sqlx::query(plan.create_table).execute(&mut *tx).await?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM jobs_migration")
        .fetch_all(&mut *tx)
        .await?;
    let mut ran = false;
    let mut apart = None;
    for script in plan.scripts {
        if applied.contains(&script.version) {
            continue;
        }
        if script.concurrent && plan.concurrent_apart {
            apart = Some(script);
            break;
        }
        (&mut *tx).execute(script.sql).await?;
        sqlx::query(plan.record)
            .bind(script.version)
            .bind(script.description)
            .execute(&mut *tx)
            .await?;
        ran = true;
    }
    if ran {
        let newest = applied
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .max(plan.newest());
        sqlx::query(plan.record_compat)
            .bind(plan.needs)
            .bind(newest)
            .bind(env!("CARGO_PKG_VERSION"))
            .execute(&mut *tx)
            .await?;
    } else if apart.is_none() {
        check_newer(&mut *tx, plan, &applied).await?;
    }
    tx.commit().await?;
    Ok(apart)
}

/// The pause between two tries of the migration lock.
async fn retry_pause() {
    #[cfg(feature = "postgres")]
    tokio::time::sleep(LOCK_RETRY).await;
}

/// Brings a PostgreSQL database up to `plan`: nothing (and no lock) when it is current;
/// else the runs of [`run`], with each `concurrent` script run apart between them.
#[cfg(feature = "postgres")]
pub(crate) async fn postgres(pool: &sqlx::PgPool, plan: &Plan) -> Result<()> {
    if is_current(pool, plan).await? {
        return Ok(());
    }
    // Begun in a task of its own: see `postgres::begin`.
    while let Some(script) = run(crate::storage::postgres::begin(pool).await?, plan).await? {
        run_concurrently(&pool.connect_options(), plan, script).await?;
    }
    Ok(())
}

/// Runs `script` (a `concurrent` one) outside a transaction on a connection of its own
/// with `options`: takes the migration lock as a session lock (so it waits for, and
/// holds off, the runs of other nodes), reads again whether it is applied, drops the
/// invalid indexes a failed `CREATE INDEX CONCURRENTLY` of an earlier try left on this
/// schema's `jobs_` tables, runs the script's statements one by one with no statement
/// timeout (an index build on a big table takes minutes; writers are not blocked
/// meanwhile), records it, and closes the connection, which releases the lock.
#[cfg(feature = "postgres")]
pub(crate) async fn run_concurrently(
    options: &sqlx::postgres::PgConnectOptions,
    plan: &Plan,
    script: &Migration,
) -> Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect_with(options).await?;
    if let Some((_, key)) = plan.lock {
        while !sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut conn)
            .await?
        {
            tokio::time::sleep(LOCK_RETRY).await;
        }
    }
    sqlx::query("SET statement_timeout = 0")
        .execute(&mut conn)
        .await?;
    let applied: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM jobs_migration WHERE version = $1)")
            .bind(script.version)
            .fetch_one(&mut conn)
            .await?;
    if !applied {
        let invalid: Vec<String> = sqlx::query_scalar(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_index AS i \
             JOIN pg_class AS c ON c.oid = i.indexrelid \
             JOIN pg_namespace AS n ON n.oid = c.relnamespace \
             WHERE NOT i.indisvalid AND n.nspname = current_schema() \
                 AND c.relname LIKE 'jobs\\_%'",
        )
        .fetch_all(&mut conn)
        .await?;
        for index in invalid {
            tracing::warn!(%index, "dropping an index a failed migration left invalid");
            conn.execute(format!("DROP INDEX CONCURRENTLY IF EXISTS {index}").as_str())
                .await?;
        }
        for statement in statements(script.sql) {
            conn.execute(statement.as_str()).await?;
        }
        sqlx::query(plan.record)
            .bind(script.version)
            .bind(script.description)
            .execute(&mut conn)
            .await?;
        sqlx::query(plan.record_compat)
            .bind(plan.needs)
            .bind(script.version)
            .bind(env!("CARGO_PKG_VERSION"))
            .execute(&mut conn)
            .await?;
    }
    conn.close().await?;
    Ok(())
}

/// The statements of a script that runs apart: its `--` comments dropped, split at `;`
/// (such scripts hold no `;` inside a statement).
#[cfg(feature = "postgres")]
fn statements(sql: &str) -> Vec<String> {
    let code: String = sql
        .lines()
        .map(|line| line.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    code.split(';')
        .map(str::trim)
        .filter(|statement| !statement.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_versions_run_in_order() {
        assert_eq!(
            SQLITE.versions(),
            [
                1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
                24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34
            ]
        );
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn postgres_versions_run_in_order() {
        assert_eq!(
            POSTGRES.versions(),
            [
                1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
                24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42
            ]
        );
    }
}
