//! SQLite storage: one file, WAL, a single writer connection.
//!
//! SQLite allows one writer at a time. Funnelling every write of this process through one
//! connection turns contention inside the process into a queue instead of
//! `SQLITE_BUSY` retries; writes from other processes on the same file wait on the busy
//! timeout. Reads use their own pool and, thanks to WAL, never wait for the writer.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Row, Sqlite, SqliteConnection};

pub(crate) use self::writer::AfterConnect;
use self::writer::Writer;
use super::migrations::{self, Migration};
use super::{
    ClaimRequest, ClaimedJob, Completion, ExpiredJob, FireRequest, Fired, LogLine,
    MAX_LOG_LINE_BYTES, NewJob, Outcome, ProgressUpdate, QueueSelector, REQUEUEABLE, ServerRow,
    Storage, cap, failure_summary, stored_error, stored_failure, stored_json,
};
use crate::MissedTicks;
use crate::record::{
    HistoryEntry, JobInfo, JobQuery, JobSummary, LogEntry, LogLevel, Progress, ServerInfo,
    ThroughputPoint,
};
use crate::recurring::{NewRecurring, RecurringInfo, RecurringSource, disabled};
use crate::{Error, JobId, JobState, Result};

mod writer;

/// SQLite's limit on bound parameters per statement is 32,766; stay well under it.
const ROWS_PER_INSERT: usize = 500;

#[derive(Debug, Clone)]
pub(crate) struct SqliteStorage {
    writer: Writer,
    reader: SqlitePool,
}

impl SqliteStorage {
    /// Opens (and creates) the database file named by `url`; `after_connect` runs on the
    /// writer's connection each time it is opened.
    pub(crate) async fn connect(url: &str, after_connect: Option<AfterConnect>) -> Result<Self> {
        let base = SqliteConnectOptions::from_str(url)?.busy_timeout(Duration::from_secs(30));
        let options = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
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
            });
        }
        let writer = Writer::open(options, after_connect).await?;
        // No ping before each use: a connection to a local file does not go stale, and
        // the ping is a round trip to SQLite's thread that every statement would wait for.
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(base.read_only(true))
            .await?;
        Ok(Self { writer, reader })
    }

    /// Uses the application's pool for reads and writes.
    pub(crate) fn from_pool(pool: SqlitePool) -> Self {
        Self {
            writer: Writer::Pool(pool.clone()),
            reader: pool,
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

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn from_micros(value: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(value).unwrap_or_default()
}

fn job_id(row: &SqliteRow, column: &str) -> Result<JobId> {
    let text: String = row.try_get(column)?;
    JobId::from_str(&text).map_err(|error| {
        Error::Database(sqlx::Error::Decode(
            format!("bad job id `{text}`: {error}").into(),
        ))
    })
}

fn job_state(row: &SqliteRow, column: &str) -> Result<JobState> {
    let text: String = row.try_get(column)?;
    JobState::from_str(&text).map_err(|error| Error::Database(sqlx::Error::Decode(error.into())))
}

fn attempt(row: &SqliteRow) -> Result<u32> {
    Ok(row.try_get::<i64, _>("attempt")?.try_into().unwrap_or(0))
}

fn max_retries(row: &SqliteRow) -> Result<Option<u32>> {
    Ok(row
        .try_get::<Option<i64>, _>("max_retries")?
        .map(|n| n.try_into().unwrap_or(0)))
}

fn recurring_info(row: &SqliteRow) -> Result<RecurringInfo> {
    let payload: String = row.try_get("payload")?;
    let last_job_id: Option<String> = row.try_get("last_job_id")?;
    Ok(RecurringInfo {
        id: row.try_get("id")?,
        schedule: row.try_get("schedule")?,
        zone: row.try_get("zone")?,
        job_name: row.try_get("job_name")?,
        display_name: row.try_get("display_name")?,
        payload: stored_json(payload),
        max_retries: max_retries(row)?,
        labels: labels(row)?,
        missed: MissedTicks::from_stored(&row.try_get::<String, _>("missed")?),
        allow_overlap: row.try_get("allow_overlap")?,
        enabled: row.try_get("enabled")?,
        disabled_reason: row.try_get("disabled_reason")?,
        source: RecurringSource::from_stored(&row.try_get::<String, _>("source")?),
        next_run_at: from_micros(row.try_get("next_run_at")?),
        last_run_at: row
            .try_get::<Option<i64>, _>("last_run_at")?
            .map(from_micros),
        last_job_id: last_job_id.and_then(|id| JobId::from_str(&id).ok()),
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
    })
}

fn summary(row: &SqliteRow) -> Result<JobSummary> {
    Ok(JobSummary {
        id: job_id(row, "id")?,
        name: row.try_get("name")?,
        display_name: row.try_get("display_name")?,
        state: job_state(row, "state")?,
        queue: row.try_get("queue")?,
        attempt: attempt(row)?,
        run_at: from_micros(row.try_get("run_at")?),
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
        labels: labels(row)?,
        progress: progress(row)?,
    })
}

fn labels(row: &SqliteRow) -> Result<Vec<String>> {
    let labels: String = row.try_get("labels")?;
    Ok(serde_json::from_str(&labels).unwrap_or_default())
}

fn progress(row: &SqliteRow) -> Result<Option<Progress>> {
    let done: Option<i64> = row.try_get("progress_done")?;
    let total: Option<i64> = row.try_get("progress_total")?;
    Ok(done.zip(total).map(|(done, total)| Progress {
        done: done.try_into().unwrap_or(0),
        total: total.try_into().unwrap_or(0),
    }))
}

/// The columns a [`JobSummary`] is read from.
const SUMMARY_COLUMNS: &str = "id, name, display_name, state, queue, attempt, run_at, \
    created_at, updated_at, labels, progress_done, progress_total";

/// Moves the awaiting continuations of `parents` (and theirs, transitively) to
/// `Deleted`: a continuation cannot run once its parent is gone.
async fn delete_continuations(
    tx: &mut sqlx::SqliteConnection,
    parents: Vec<JobId>,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut parents = parents;
    while !parents.is_empty() {
        let mut children = Vec::new();
        for chunk in parents.chunks(ROWS_PER_INSERT) {
            let mut update =
                QueryBuilder::<Sqlite>::new("UPDATE jobs_job SET state = 'Deleted', updated_at = ");
            update
                .push_bind(micros(now))
                .push(" WHERE state = 'Awaiting' AND parent_id IN (");
            let mut ids = update.separated(", ");
            for id in chunk {
                ids.push_bind(id.to_string());
            }
            update.push(") RETURNING id, attempt");
            let rows = update.build().fetch_all(&mut *tx).await?;
            let mut events = Vec::with_capacity(rows.len());
            for row in &rows {
                let id = job_id(row, "id")?;
                children.push(id);
                events.push((id, now, JobState::Deleted, attempt(row)?, None));
            }
            events_insert(tx, events).await?;
        }
        parents = children;
    }
    Ok(())
}

/// Releases the continuations that the finished `parents` decide: those of succeeded
/// parents (deleting their `on_failure` ones) and the `on_failure` ones of failed parents.
async fn release_continuations(
    tx: &mut sqlx::SqliteConnection,
    succeeded: &[JobId],
    failed: &[JobId],
    now: DateTime<Utc>,
) -> Result<()> {
    for (parents, on_failure) in [(succeeded, false), (failed, true)] {
        for chunk in parents.chunks(ROWS_PER_INSERT) {
            let mut update =
                QueryBuilder::<Sqlite>::new("UPDATE jobs_job SET state = 'Enqueued', run_at = ");
            update
                .push_bind(micros(now))
                .push(", updated_at = ")
                .push_bind(micros(now))
                .push(" WHERE state = 'Awaiting' AND on_failure = ")
                .push_bind(on_failure)
                .push(" AND parent_id IN (");
            let mut ids = update.separated(", ");
            for id in chunk {
                ids.push_bind(id.to_string());
            }
            update.push(")");
            finish_update(tx, update, now, JobState::Enqueued).await?;
        }
    }
    // A succeeded parent's on-failure continuations will never run.
    for chunk in succeeded.chunks(ROWS_PER_INSERT) {
        let mut update =
            QueryBuilder::<Sqlite>::new("UPDATE jobs_job SET state = 'Deleted', updated_at = ");
        update
            .push_bind(micros(now))
            .push(" WHERE state = 'Awaiting' AND on_failure = 1 AND parent_id IN (");
        let mut ids = update.separated(", ");
        for id in chunk {
            ids.push_bind(id.to_string());
        }
        update.push(")");
        finish_update(tx, update, now, JobState::Deleted).await?;
    }
    Ok(())
}

/// Appends one history row per job inside `tx`.
async fn events_insert(
    tx: &mut sqlx::SqliteConnection,
    events: impl IntoIterator<Item = (JobId, DateTime<Utc>, JobState, u32, Option<&str>)>,
) -> Result<()> {
    let events: Vec<_> = events.into_iter().collect();
    for chunk in events.chunks(ROWS_PER_INSERT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO jobs_event (job_id, at, state, attempt, server) ",
        );
        insert.push_values(chunk, |mut row, (id, at, state, attempt, server)| {
            row.push_bind(id.to_string())
                .push_bind(micros(*at))
                .push_bind(state.as_str())
                .push_bind(i64::from(*attempt))
                .push_bind(server.map(str::to_owned));
        });
        insert.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// Inserts jobs on `conn`; an id that exists already is skipped (dedupe). A trigger
/// writes the creation history of each row this call created, so a deduped enqueue
/// leaves no trace. Used by the storage and by transactional enqueue, inside the
/// caller's transaction.
pub(crate) async fn jobs_insert_with(
    conn: &mut sqlx::SqliteConnection,
    jobs: &[NewJob],
) -> Result<()> {
    for chunk in jobs.chunks(ROWS_PER_INSERT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO jobs_job (id, name, display_name, payload, state, queue, priority, \
             run_at, max_retries, recurring_id, parent_id, on_failure, labels, created_at, \
             updated_at) ",
        );
        insert.push_values(chunk, |mut row, job| {
            row.push_bind(job.id.to_string())
                .push_bind(&job.name)
                .push_bind(&job.display_name)
                .push_bind(&job.payload)
                .push_bind(job.state.as_str())
                .push_bind(&job.queue)
                .push_bind(job.priority)
                .push_bind(micros(job.run_at))
                .push_bind(job.max_retries.map(i64::from))
                .push_bind(&job.recurring_id)
                .push_bind(job.parent_id.map(|id| id.to_string()))
                .push_bind(job.on_failure)
                .push_bind(job.labels_json())
                .push_bind(micros(job.created_at))
                .push_bind(micros(job.created_at));
        });
        // Ids made for this insert cannot clash (see `NewJob::fresh_id`).
        if !chunk.iter().all(|job| job.fresh_id) {
            insert.push(" ON CONFLICT (id) DO NOTHING");
        }
        insert.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Appends the query's filters (state, name, text search) as `AND …` conditions.
fn push_filters(builder: &mut QueryBuilder<'_, Sqlite>, query: &JobQuery) {
    if let Some(state) = query.state {
        builder.push(" AND state = ").push_bind(state.as_str());
    }
    if let Some(name) = &query.name {
        builder.push(" AND name = ").push_bind(name.clone());
    }
    if let Some(pattern) = query.label_pattern() {
        builder
            .push(" AND labels LIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\'");
    }
    if let Some(pattern) = query.like_pattern() {
        builder
            .push(" AND (lower(display_name) LIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\' OR lower(name) LIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\')");
    }
}

/// The start of a requeue: every requeueable row, to which the caller adds conditions.
fn requeue_update(now: DateTime<Utc>) -> QueryBuilder<'static, Sqlite> {
    let mut update = QueryBuilder::<Sqlite>::new(
        "UPDATE jobs_job SET state = 'Enqueued', attempt = 0, owner = NULL, lease_until = NULL, \
         run_at = ",
    );
    update
        .push_bind(micros(now))
        .push(", updated_at = ")
        .push_bind(micros(now))
        .push(format!(" WHERE state IN {REQUEUEABLE}"));
    update
}

/// Runs a state-changing `UPDATE` and records `state` in the history of each row it
/// changed; returns how many.
async fn finish_update(
    tx: &mut sqlx::SqliteConnection,
    mut update: QueryBuilder<'_, Sqlite>,
    now: DateTime<Utc>,
    state: JobState,
) -> Result<u64> {
    update.push(" RETURNING id, attempt");
    let rows = update.build().fetch_all(&mut *tx).await?;
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        events.push((job_id(row, "id")?, now, state, attempt(row)?, None));
    }
    events_insert(tx, events).await?;
    Ok(rows.len() as u64)
}

impl Storage for SqliteStorage {
    async fn migrate(&self) -> Result<()> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS jobs_migration (
                version INTEGER PRIMARY KEY NOT NULL,
                description TEXT NOT NULL,
                applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
        )
        .execute(&mut *tx)
        .await?;
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM jobs_migration")
            .fetch_all(&mut *tx)
            .await?;
        for Migration {
            version,
            description,
            sql,
        } in migrations::SQLITE
        {
            if applied.contains(version) {
                continue;
            }
            sqlx::Executor::execute(&mut *tx, *sql).await?;
            sqlx::query("INSERT INTO jobs_migration (version, description) VALUES (?, ?)")
                .bind(version)
                .bind(description)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn jobs_insert(&self, jobs: &[NewJob]) -> Result<()> {
        if jobs.len() <= ROWS_PER_INSERT {
            // One statement, atomic on its own (its trigger included): a transaction
            // around it would only add two round trips to SQLite's thread.
            return jobs_insert_with(&mut *self.writer.lock().await?, jobs).await;
        }
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        jobs_insert_with(&mut tx, jobs).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn job_get(&self, id: JobId) -> Result<Option<JobInfo>> {
        let Some(row) = sqlx::query("SELECT * FROM jobs_job WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?
        else {
            return Ok(None);
        };
        let events = sqlx::query(
            "SELECT at, state, attempt, server, message, sources FROM jobs_event \
             WHERE job_id = ? ORDER BY seq",
        )
        .bind(id.to_string())
        .fetch_all(&self.reader)
        .await?;
        let mut history = Vec::with_capacity(events.len());
        for event in &events {
            let message: Option<String> = event.try_get("message")?;
            let sources: Option<String> = event.try_get("sources")?;
            history.push(HistoryEntry {
                at: from_micros(event.try_get("at")?),
                state: job_state(event, "state")?,
                attempt: attempt(event)?,
                server: event.try_get("server")?,
                error: stored_error(message, sources),
            });
        }
        let lines = sqlx::query(
            "SELECT at, attempt, level, message FROM jobs_log WHERE job_id = ? ORDER BY seq",
        )
        .bind(id.to_string())
        .fetch_all(&self.reader)
        .await?;
        let mut logs = Vec::with_capacity(lines.len());
        for line in &lines {
            logs.push(LogEntry {
                at: from_micros(line.try_get("at")?),
                attempt: attempt(line)?,
                level: LogLevel::from_stored(&line.try_get::<String, _>("level")?),
                message: line.try_get("message")?,
            });
        }
        let parent_id: Option<String> = row.try_get("parent_id")?;
        let payload: String = row.try_get("payload")?;
        Ok(Some(JobInfo {
            id,
            name: row.try_get("name")?,
            display_name: row.try_get("display_name")?,
            payload: stored_json(payload),
            state: job_state(&row, "state")?,
            queue: row.try_get("queue")?,
            priority: row.try_get("priority")?,
            attempt: attempt(&row)?,
            max_retries: max_retries(&row)?,
            run_at: from_micros(row.try_get("run_at")?),
            owner: row.try_get("owner")?,
            last_error: row.try_get("last_error")?,
            created_at: from_micros(row.try_get("created_at")?),
            updated_at: from_micros(row.try_get("updated_at")?),
            history,
            labels: labels(&row)?,
            parent_id: parent_id.and_then(|id| JobId::from_str(&id).ok()),
            progress: progress(&row)?,
            logs,
        }))
    }

    async fn job_delete(&self, id: JobId, now: DateTime<Utc>) -> Result<bool> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        let Some(row) = sqlx::query(
            "UPDATE jobs_job SET state = 'Deleted', lease_until = NULL, \
             updated_at = ?2 WHERE id = ?1 AND state <> 'Deleted' RETURNING attempt",
        )
        .bind(id.to_string())
        .bind(micros(now))
        .fetch_optional(&mut *tx)
        .await?
        else {
            let exists = sqlx::query("SELECT 1 FROM jobs_job WHERE id = ?")
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            return Ok(exists);
        };
        events_insert(
            &mut tx,
            [(id, now, JobState::Deleted, attempt(&row)?, None)],
        )
        .await?;
        delete_continuations(&mut tx, vec![id], now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn jobs_list(&self, query: &JobQuery) -> Result<Vec<JobSummary>> {
        let mut select = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {SUMMARY_COLUMNS} FROM jobs_job WHERE 1 = 1"
        ));
        push_filters(&mut select, query);
        if let Some(after) = query.after {
            select.push(" AND id < ").push_bind(after.to_string());
        }
        select
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(query.limit.min(1000)));
        let rows = select.build().fetch_all(&self.reader).await?;
        rows.iter().map(summary).collect()
    }

    async fn job_requeue(&self, id: JobId, now: DateTime<Utc>) -> Result<bool> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        let mut update = requeue_update(now);
        update.push(" AND id = ").push_bind(id.to_string());
        let requeued = finish_update(&mut tx, update, now, JobState::Enqueued).await?;
        tx.commit().await?;
        Ok(requeued > 0)
    }

    async fn jobs_requeue_matching(&self, query: &JobQuery, now: DateTime<Utc>) -> Result<u64> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        let mut update = requeue_update(now);
        push_filters(&mut update, query);
        let requeued = finish_update(&mut tx, update, now, JobState::Enqueued).await?;
        tx.commit().await?;
        Ok(requeued)
    }

    async fn jobs_delete_matching(&self, query: &JobQuery, now: DateTime<Utc>) -> Result<u64> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        let mut update = QueryBuilder::<Sqlite>::new(
            "UPDATE jobs_job SET state = 'Deleted', lease_until = NULL, updated_at = ",
        );
        update
            .push_bind(micros(now))
            .push(" WHERE state <> 'Deleted'");
        push_filters(&mut update, query);
        update.push(" RETURNING id, attempt");
        let rows = update.build().fetch_all(&mut *tx).await?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            let id = job_id(row, "id")?;
            ids.push(id);
            events.push((id, now, JobState::Deleted, attempt(row)?, None));
        }
        events_insert(&mut tx, events).await?;
        let deleted = ids.len() as u64;
        delete_continuations(&mut tx, ids, now).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    async fn jobs_throughput(&self, since: DateTime<Utc>) -> Result<Vec<ThroughputPoint>> {
        let rows = sqlx::query(
            "SELECT at / 60000000 AS minute, \
                 SUM(state = 'Succeeded') AS succeeded, SUM(state <> 'Succeeded') AS failed \
             FROM jobs_event \
             WHERE at >= ? AND (state = 'Succeeded' OR message IS NOT NULL) \
             GROUP BY minute ORDER BY minute",
        )
        .bind(micros(since))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ThroughputPoint {
                    minute: from_micros(row.try_get::<i64, _>("minute")? * 60_000_000),
                    succeeded: row.try_get::<i64, _>("succeeded")?.try_into().unwrap_or(0),
                    failed: row.try_get::<i64, _>("failed")?.try_into().unwrap_or(0),
                })
            })
            .collect()
    }

    async fn servers_list(&self) -> Result<Vec<ServerInfo>> {
        let rows = sqlx::query("SELECT * FROM jobs_server ORDER BY name, id")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ServerInfo {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    host: row.try_get("host")?,
                    pid: row.try_get::<i64, _>("pid")?.try_into().unwrap_or(0),
                    workers: row.try_get::<i64, _>("workers")?.try_into().unwrap_or(0),
                    running: row.try_get::<i64, _>("running")?.try_into().unwrap_or(0),
                    started_at: from_micros(row.try_get("started_at")?),
                    heartbeat_at: from_micros(row.try_get("heartbeat_at")?),
                })
            })
            .collect()
    }

    async fn jobs_count(&self) -> Result<Vec<(JobState, u64)>> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM jobs_job GROUP BY state")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| Ok((job_state(row, "state")?, row.try_get::<i64, _>("n")? as u64)))
            .collect()
    }

    async fn jobs_claim(&self, request: ClaimRequest<'_>) -> Result<Vec<ClaimedJob>> {
        // One statement, atomic on its own; a trigger writes each claim's history row.
        let mut claim = QueryBuilder::<Sqlite>::new(
            "UPDATE jobs_job SET state = 'Processing', attempt = attempt + 1, owner = ",
        );
        claim
            .push_bind(request.owner)
            .push(", lease_until = ")
            .push_bind(micros(request.lease_until))
            .push(", updated_at = ")
            .push_bind(micros(request.now))
            .push(
                " WHERE id IN (SELECT id FROM jobs_job INDEXED BY jobs_job_runnable \
                 WHERE state IN ('Enqueued', 'Scheduled') AND run_at <= ",
            )
            .push_bind(micros(request.now));
        match request.queues {
            QueueSelector::All => {}
            QueueSelector::Only(queue) => {
                claim.push(" AND queue = ").push_bind(queue.to_owned());
            }
            QueueSelector::AllExcept(queues) => {
                claim.push(" AND queue NOT IN (");
                let mut names = claim.separated(", ");
                for queue in queues {
                    names.push_bind(queue.clone());
                }
                claim.push(")");
            }
        }
        claim
            .push(" ORDER BY priority DESC, run_at LIMIT ")
            .push_bind(i64::from(request.limit))
            .push(") RETURNING id, name, payload, attempt, max_retries, queue, run_at");
        let rows = claim
            .build()
            .fetch_all(&mut *self.writer.lock().await?)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ClaimedJob {
                    id: job_id(row, "id")?,
                    name: row.try_get("name")?,
                    payload: row.try_get("payload")?,
                    attempt: attempt(row)?,
                    max_retries: max_retries(row)?,
                    queue: row.try_get("queue")?,
                    run_at: from_micros(row.try_get("run_at")?),
                })
            })
            .collect()
    }

    async fn jobs_complete(&self, completions: &[Completion]) -> Result<()> {
        if completions.is_empty() {
            return Ok(());
        }
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        // The jobs whose fence held, and whether any continuation awaits them.
        let mut finished = HashMap::with_capacity(completions.len());
        for chunk in completions.chunks(ROWS_PER_INSERT) {
            let mut update = QueryBuilder::<Sqlite>::new(
                "WITH done (id, owner, attempt, state, run_at, last_error, at) AS (",
            );
            update.push_values(padded(chunk), |mut row, completion| {
                let Some(completion) = completion else {
                    for _ in 0..7 {
                        row.push_bind(None::<i64>);
                    }
                    return;
                };
                let (state, run_at, failure) = completion.outcome.ending();
                row.push_bind(completion.id.to_string())
                    .push_bind(completion.owner.as_str())
                    .push_bind(i64::from(completion.attempt))
                    .push_bind(state.as_str())
                    .push_bind(run_at.map(micros))
                    .push_bind(failure.map(failure_summary))
                    .push_bind(micros(completion.at));
            });
            update.push(
                ") UPDATE jobs_job SET state = done.state, \
                     run_at = COALESCE(done.run_at, jobs_job.run_at), \
                     last_error = COALESCE(done.last_error, jobs_job.last_error), \
                     owner = NULL, lease_until = NULL, updated_at = done.at \
                 FROM done WHERE jobs_job.id = done.id AND jobs_job.owner = done.owner \
                     AND jobs_job.attempt = done.attempt AND jobs_job.state = 'Processing' \
                 RETURNING id, EXISTS (SELECT 1 FROM jobs_job AS child \
                     WHERE child.parent_id = jobs_job.id AND child.state = 'Awaiting') AS awaited",
            );
            for row in update.build().fetch_all(&mut *tx).await? {
                finished.insert(job_id(&row, "id")?, row.try_get::<bool, _>("awaited")?);
            }
        }
        // Results that failed the fence (deleted, released or rescued meanwhile) leave no
        // history; a job's result counts once even if it came twice.
        let recorded: Vec<(&Completion, bool)> = completions
            .iter()
            .filter_map(|completion| Some((completion, finished.remove(&completion.id)?)))
            .collect();
        for chunk in recorded.chunks(ROWS_PER_INSERT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO jobs_event (job_id, at, state, attempt, server, message, sources) \
                 SELECT * FROM (",
            );
            insert.push_values(padded(chunk), |mut row, recorded| {
                let Some((completion, _)) = recorded else {
                    for _ in 0..7 {
                        row.push_bind(None::<i64>);
                    }
                    return;
                };
                let (state, _, failure) = completion.outcome.ending();
                let (message, sources) = failure.map(stored_failure).unzip();
                row.push_bind(completion.id.to_string())
                    .push_bind(micros(completion.at))
                    .push_bind(state.as_str())
                    .push_bind(i64::from(completion.attempt))
                    .push_bind(completion.owner.as_str())
                    .push_bind(message)
                    .push_bind(sources);
            });
            insert.push(") WHERE column1 IS NOT NULL");
            insert.build().execute(&mut *tx).await?;
        }
        let mut awaited = (Vec::new(), Vec::new());
        let mut now = None;
        for (completion, has_continuations) in recorded {
            now = now.max(Some(completion.at));
            if !has_continuations {
                continue;
            }
            match completion.outcome {
                Outcome::Succeeded => awaited.0.push(completion.id),
                Outcome::Failed { .. } => awaited.1.push(completion.id),
                Outcome::Retry { .. } => {}
            }
        }
        if let Some(now) = now {
            release_continuations(&mut tx, &awaited.0, &awaited.1, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn logs_insert(&self, lines: &[LogLine]) -> Result<()> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        for chunk in lines.chunks(ROWS_PER_INSERT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO jobs_log (job_id, at, attempt, level, message) ",
            );
            insert.push_values(chunk, |mut row, line| {
                row.push_bind(line.job_id.to_string())
                    .push_bind(micros(line.at))
                    .push_bind(i64::from(line.attempt))
                    .push_bind(line.level.as_str())
                    .push_bind(cap(&line.message, MAX_LOG_LINE_BYTES));
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn progress_update(&self, updates: &[ProgressUpdate]) -> Result<()> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        for update in updates {
            sqlx::query(
                "UPDATE jobs_job SET progress_done = ?2, progress_total = ?3 WHERE id = ?1",
            )
            .bind(update.job_id.to_string())
            .bind(i64::try_from(update.done).unwrap_or(i64::MAX))
            .bind(i64::try_from(update.total).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn step_get(&self, job_id: JobId, name: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM jobs_step WHERE job_id = ? AND name = ?")
                .bind(job_id.to_string())
                .bind(name)
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    async fn step_put(
        &self,
        job_id: JobId,
        name: &str,
        value: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO jobs_step (job_id, name, value, at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (job_id, name) DO NOTHING",
        )
        .bind(job_id.to_string())
        .bind(name)
        .bind(value)
        .bind(micros(at))
        .execute(&mut *self.writer.lock().await?)
        .await?;
        Ok(())
    }

    async fn jobs_deleted_among(&self, ids: &[JobId]) -> Result<Vec<JobId>> {
        let mut deleted = Vec::new();
        for chunk in ids.chunks(ROWS_PER_INSERT) {
            let mut select = QueryBuilder::<Sqlite>::new(
                "SELECT id FROM jobs_job WHERE state = 'Deleted' AND id IN (",
            );
            let mut list = select.separated(", ");
            for id in chunk {
                list.push_bind(id.to_string());
            }
            select.push(")");
            for row in select.build().fetch_all(&self.reader).await? {
                deleted.push(job_id(&row, "id")?);
            }
        }
        Ok(deleted)
    }

    async fn jobs_next_run_at(&self) -> Result<Option<DateTime<Utc>>> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(run_at) FROM jobs_job WHERE state IN ('Enqueued', 'Scheduled')",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(next.map(from_micros))
    }

    async fn jobs_release(
        &self,
        owner: &str,
        only: Option<&[JobId]>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let only = only
            .map(|ids| serde_json::to_string(&ids.iter().map(JobId::to_string).collect::<Vec<_>>()))
            .transpose()?;
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        let rows = sqlx::query(
            "UPDATE jobs_job SET state = 'Enqueued', attempt = attempt - 1, owner = NULL, \
                 lease_until = NULL, run_at = ?2, updated_at = ?2 \
             WHERE owner = ?1 AND state = 'Processing' \
                 AND (?3 IS NULL OR id IN (SELECT value FROM json_each(?3))) \
             RETURNING id, attempt",
        )
        .bind(owner)
        .bind(micros(now))
        .bind(only)
        .fetch_all(&mut *tx)
        .await?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            events.push((
                job_id(row, "id")?,
                now,
                JobState::Enqueued,
                attempt(row)?,
                Some(owner),
            ));
        }
        events_insert(&mut tx, events).await?;
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    async fn jobs_expired(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<ExpiredJob>> {
        let rows = sqlx::query(
            "SELECT id, owner, attempt, max_retries FROM jobs_job \
             WHERE state = 'Processing' AND lease_until < ? LIMIT ?",
        )
        .bind(micros(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *self.writer.lock().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ExpiredJob {
                    id: job_id(row, "id")?,
                    owner: row
                        .try_get::<Option<String>, _>("owner")?
                        .unwrap_or_default(),
                    attempt: attempt(row)?,
                    max_retries: max_retries(row)?,
                })
            })
            .collect()
    }

    async fn jobs_prune(
        &self,
        succeeded_before: DateTime<Utc>,
        deleted_before: DateTime<Utc>,
    ) -> Result<u64> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        let doomed = "SELECT id FROM jobs_job WHERE (state = 'Succeeded' AND updated_at < ?1) \
                      OR (state = 'Deleted' AND updated_at < ?2)";
        for table in ["jobs_event", "jobs_log", "jobs_step"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE job_id IN ({doomed})"))
                .bind(micros(succeeded_before))
                .bind(micros(deleted_before))
                .execute(&mut *tx)
                .await?;
        }
        let deleted = sqlx::query(&format!("DELETE FROM jobs_job WHERE id IN ({doomed})"))
            .bind(micros(succeeded_before))
            .bind(micros(deleted_before))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted)
    }

    async fn server_heartbeat(
        &self,
        server: &ServerRow,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<()> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        sqlx::query(
            "INSERT INTO jobs_server (id, name, host, pid, workers, running, started_at, heartbeat_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT (id) DO UPDATE SET running = excluded.running, \
                 heartbeat_at = excluded.heartbeat_at",
        )
        .bind(&server.id)
        .bind(&server.name)
        .bind(&server.host)
        .bind(i64::from(server.pid))
        .bind(i64::from(server.workers))
        .bind(i64::from(server.running))
        .bind(micros(server.started_at))
        .bind(micros(now))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE jobs_job SET lease_until = ?2 WHERE owner = ?1 AND state = 'Processing'",
        )
        .bind(&server.id)
        .bind(micros(lease_until))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn server_remove(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM jobs_server WHERE id = ?")
            .bind(id)
            .execute(&mut *self.writer.lock().await?)
            .await?;
        Ok(())
    }

    async fn servers_prune(&self, dead_before: DateTime<Utc>) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM jobs_server WHERE heartbeat_at < ?")
                .bind(micros(dead_before))
                .execute(&mut *self.writer.lock().await?)
                .await?
                .rows_affected(),
        )
    }

    async fn recurring_upsert(&self, recurring: &NewRecurring, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO jobs_recurring (id, schedule, zone, job_name, display_name, payload, \
                 max_retries, missed, allow_overlap, enabled, source, next_run_at, created_at, \
                 updated_at, labels) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10, ?11, ?12, ?12, ?14) \
             ON CONFLICT (id) DO UPDATE SET \
                 next_run_at = CASE WHEN jobs_recurring.schedule <> excluded.schedule \
                     OR jobs_recurring.zone <> excluded.zone \
                     THEN excluded.next_run_at ELSE jobs_recurring.next_run_at END, \
                 schedule = excluded.schedule, zone = excluded.zone, \
                 job_name = excluded.job_name, display_name = excluded.display_name, \
                 payload = excluded.payload, max_retries = excluded.max_retries, \
                 labels = excluded.labels, \
                 missed = excluded.missed, allow_overlap = excluded.allow_overlap, \
                 source = excluded.source, \
                 enabled = CASE WHEN jobs_recurring.disabled_reason = ?13 \
                     THEN 1 ELSE jobs_recurring.enabled END, \
                 disabled_reason = CASE WHEN jobs_recurring.disabled_reason = ?13 \
                     THEN NULL ELSE jobs_recurring.disabled_reason END, \
                 updated_at = excluded.updated_at",
        )
        .bind(&recurring.id)
        .bind(recurring.schedule.expression())
        .bind(recurring.schedule.zone())
        .bind(&recurring.template.name)
        .bind(&recurring.template.display_name)
        .bind(&recurring.template.payload)
        .bind(recurring.template.max_retries.map(i64::from))
        .bind(recurring.missed.as_stored())
        .bind(recurring.allow_overlap)
        .bind(recurring.source.as_str())
        .bind(micros(recurring.next_run_at))
        .bind(micros(now))
        .bind(disabled::REMOVED)
        .bind(recurring.template.labels_json())
        .execute(&mut *self.writer.lock().await?)
        .await?;
        Ok(())
    }

    async fn recurring_disable_missing(
        &self,
        declared: &[String],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut update = QueryBuilder::<Sqlite>::new(
            "UPDATE jobs_recurring SET enabled = 0, disabled_reason = ",
        );
        update
            .push_bind(disabled::REMOVED)
            .push(", updated_at = ")
            .push_bind(micros(now))
            .push(" WHERE source = 'code' AND enabled = 1");
        if !declared.is_empty() {
            update.push(" AND id NOT IN (");
            let mut ids = update.separated(", ");
            for id in declared {
                ids.push_bind(id.clone());
            }
            update.push(")");
        }
        Ok(update
            .build()
            .execute(&mut *self.writer.lock().await?)
            .await?
            .rows_affected())
    }

    async fn recurring_get(&self, id: &str) -> Result<Option<RecurringInfo>> {
        sqlx::query("SELECT * FROM jobs_recurring WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(recurring_info)
            .transpose()
    }

    async fn recurring_list(&self) -> Result<Vec<RecurringInfo>> {
        sqlx::query("SELECT * FROM jobs_recurring ORDER BY id")
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(recurring_info)
            .collect()
    }

    async fn recurring_delete(&self, id: &str) -> Result<bool> {
        Ok(sqlx::query("DELETE FROM jobs_recurring WHERE id = ?")
            .bind(id)
            .execute(&mut *self.writer.lock().await?)
            .await?
            .rows_affected()
            > 0)
    }

    async fn recurring_set_enabled(
        &self,
        id: &str,
        enabled: bool,
        next_run_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let query = if enabled {
            sqlx::query(
                "UPDATE jobs_recurring SET enabled = 1, disabled_reason = NULL, \
                 next_run_at = ?2, updated_at = ?3 WHERE id = ?1",
            )
            .bind(id)
            .bind(micros(next_run_at))
            .bind(micros(now))
        } else {
            sqlx::query(
                "UPDATE jobs_recurring SET enabled = 0, disabled_reason = ?2, updated_at = ?3 \
                 WHERE id = ?1",
            )
            .bind(id)
            .bind(disabled::BY_USER)
            .bind(micros(now))
        };
        Ok(query
            .execute(&mut *self.writer.lock().await?)
            .await?
            .rows_affected()
            > 0)
    }

    async fn recurring_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<RecurringInfo>> {
        sqlx::query(
            "SELECT * FROM jobs_recurring WHERE enabled = 1 AND next_run_at <= ? \
             ORDER BY next_run_at LIMIT ?",
        )
        .bind(micros(now))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(recurring_info)
        .collect()
    }

    async fn recurring_next_run_at(&self) -> Result<Option<DateTime<Utc>>> {
        let next: Option<i64> =
            sqlx::query_scalar("SELECT MIN(next_run_at) FROM jobs_recurring WHERE enabled = 1")
                .fetch_one(&self.reader)
                .await?;
        Ok(next.map(from_micros))
    }

    async fn recurring_fire(&self, request: FireRequest<'_>) -> Result<Fired> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        let advanced = match request.next {
            Some(next) => sqlx::query(
                "UPDATE jobs_recurring SET next_run_at = ?3, updated_at = ?4 \
                 WHERE id = ?1 AND next_run_at = ?2 AND enabled = 1",
            )
            .bind(request.id)
            .bind(micros(request.expected_next))
            .bind(micros(next))
            .bind(micros(request.now)),
            None => sqlx::query(
                "UPDATE jobs_recurring SET enabled = 0, disabled_reason = ?3, updated_at = ?4 \
                 WHERE id = ?1 AND next_run_at = ?2 AND enabled = 1",
            )
            .bind(request.id)
            .bind(micros(request.expected_next))
            .bind(disabled::FINISHED)
            .bind(micros(request.now)),
        }
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if advanced == 0 {
            return Ok(Fired::Lost);
        }
        let Some(last) = request.runs.last() else {
            tx.commit().await?;
            return Ok(Fired::Created);
        };
        if !request.allow_overlap {
            let active = sqlx::query(
                "SELECT 1 FROM jobs_job WHERE recurring_id = ? \
                 AND state IN ('Enqueued', 'Scheduled', 'Processing', 'Awaiting') LIMIT 1",
            )
            .bind(request.id)
            .fetch_optional(&mut *tx)
            .await?;
            if active.is_some() {
                tx.commit().await?;
                return Ok(Fired::SkippedOverlap);
            }
        }
        jobs_insert_with(&mut tx, request.runs).await?;
        sqlx::query("UPDATE jobs_recurring SET last_run_at = ?2, last_job_id = ?3 WHERE id = ?1")
            .bind(request.id)
            .bind(micros(request.now))
            .bind(last.id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Fired::Created)
    }
}
