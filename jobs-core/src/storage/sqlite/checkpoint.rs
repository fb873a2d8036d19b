//! Checkpoints off the write path.
//!
//! In WAL mode SQLite copies the log back into the database file at a checkpoint, and
//! with `synchronous = NORMAL` that is also when the log reaches the disk: an `fsync`
//! of each. By default the connection whose commit takes the log past 1,000 pages runs
//! it inside that commit, so every few hundred enqueues one waits for the disk twice,
//! and every write queued behind it waits too. Here a connection of its own runs a
//! passive checkpoint (it waits for no reader or writer) soon after each write: the
//! writer's own checkpoint, still SQLite's, then finds the log copied and synced but for
//! its last pages. A quiet application's commits reach the disk within about a second,
//! rather than once 1,000 pages have piled up.

use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};
use tokio_util::sync::{CancellationToken, DropGuard};

/// The wait between checkpoints while the log grows.
const BUSY: Duration = Duration::from_millis(20);
/// The longest wait, reached by doubling while nothing is written.
const IDLE: Duration = Duration::from_secs(1);

/// Starts checkpointing the database `options` open, on a connection of its own, until
/// the returned guard (which every clone of the storage shares) is dropped.
pub(super) async fn start(options: &SqliteConnectOptions) -> crate::Result<DropGuard> {
    let connection = options.clone().connect().await?;
    let stop = CancellationToken::new();
    tokio::spawn(run(connection, stop.clone()));
    Ok(stop.drop_guard())
}

async fn run(mut connection: SqliteConnection, stop: CancellationToken) {
    let mut wait = BUSY;
    // The log's size and how much of it is in the database file, as the last
    // checkpoint left them: when the next finds them unchanged, nothing was written.
    let mut last = None;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
        let checkpoint: Result<(i64, i64, i64), _> =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&mut connection)
                .await;
        wait = match checkpoint {
            Ok((_, log, copied)) if last != Some((log, copied)) => {
                last = Some((log, copied));
                BUSY
            }
            Ok(_) => (wait * 2).min(IDLE),
            // The log stays as it was (a full disk, say): the writer's own checkpoint
            // or a later one copies it.
            Err(error) => {
                tracing::debug!(%error, "checkpoint off the write path failed");
                IDLE
            }
        };
    }
    let _ = connection.close().await;
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::str::FromStr;
    use std::time::Duration;

    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Connection};
    use tokio::time::Instant;

    use crate::storage::conformance::{id, job};
    use crate::storage::sqlite::SqliteStorage;
    use crate::storage::{LifecycleStore, Schema};

    /// Waits, up to a bound far above the checkpoints' interval, until `check` holds.
    async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check().await {
            assert!(Instant::now() < deadline, "{what}: not within 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn storage(file: &Path) -> SqliteStorage {
        let url = format!("sqlite://{}", file.display());
        let storage = SqliteStorage::connect(&url, &Default::default(), None)
            .await
            .unwrap();
        storage.migrate().await.unwrap();
        storage
    }

    /// Whether the database file alone, without its write-ahead log, holds job `n`:
    /// read from a copy of the file, which has no log beside it.
    async fn in_the_file(file: &Path, n: u128) -> bool {
        let copy: PathBuf = file.with_extension("copy");
        // A copy taken while a checkpoint writes the file may be torn: the next one
        // is not.
        if std::fs::copy(file, &copy).is_err() {
            return false;
        }
        let Ok(mut conn) = SqliteConnectOptions::new()
            .filename(&copy)
            .immutable(true)
            .connect()
            .await
        else {
            return false;
        };
        let found: Result<i64, _> =
            sqlx::query_scalar("SELECT count(*) FROM jobs_job WHERE id = ?1")
                .bind(id(n).to_string())
                .fetch_one(&mut conn)
                .await;
        let _ = conn.close().await;
        found.is_ok_and(|found| found == 1)
    }

    #[tokio::test]
    async fn a_quiet_applications_enqueue_reaches_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("jobs.db");
        let storage = storage(&file).await;
        // One job: a few pages of the log, far from the 1,000 at which the writer's own
        // checkpoint would copy them.
        storage.jobs_insert(&[job(id(1), "quiet")]).await.unwrap();
        eventually("the job in the database file", async || {
            in_the_file(&file, 1).await
        })
        .await;
    }

    #[tokio::test]
    async fn the_checkpoints_stop_with_the_last_clone_of_the_storage() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("jobs.db");
        let storage = storage(&file).await;
        let clone = storage.clone();
        drop(storage);
        clone.jobs_insert(&[job(id(1), "kept")]).await.unwrap();
        eventually("the job in the database file", async || {
            in_the_file(&file, 1).await
        })
        .await;
        drop(clone);
        // Leaving WAL mode needs every other connection to the file closed, the
        // checkpoints' one included.
        let options =
            SqliteConnectOptions::from_str(&format!("sqlite://{}", file.display())).unwrap();
        eventually("every connection closed", async || {
            let Ok(mut conn) = options.connect().await else {
                return false;
            };
            let mode: Result<String, _> = sqlx::query_scalar("PRAGMA journal_mode = DELETE")
                .fetch_one(&mut conn)
                .await;
            let _ = conn.close().await;
            mode.is_ok_and(|mode| mode == "delete")
        })
        .await;
    }
}
