//! The dashboard's job list on a big table: a page of 50 jobs in one state, newest
//! first, at the top and deep down (keyset), through `jobs.list`.
//!
//! The table is filled with plain SQL in one statement: rows spread over 30 days with
//! time-ordered UUIDv7 ids, four job names, and states in the proportions of a busy
//! system (85 % succeeded, 5 % failed, 4 % deleted, 3 % enqueued, 1 % scheduled for a
//! retry, 2 % processing), each with the attempt, owner, lease and error its state
//! implies; one job in a hundred has the label `vip`. History rows are not generated:
//! the list does not read them.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Result;
use chrono::Utc;
use jobs::{JobId, JobQuery, JobState, Jobs};
use tokio::time::Instant;
use uuid::Uuid;

use crate::db::{Raw, Scratch};
use crate::stats::median_ms;

/// The jobs of the table were created over this span, ending now.
const SPAN: Duration = Duration::from_secs(30 * 24 * 3600);
/// The jobs of a table that stands for recent work were created over this span: less
/// than the 36 h after which the server prunes succeeded jobs.
const RECENT: Duration = Duration::from_secs(24 * 3600);
/// Jobs per page, as the dashboard asks for.
const PAGE: u32 = 50;

/// Median time of a page, in ms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paged {
    /// The newest page.
    pub(crate) first_ms: f64,
    /// A page halfway down the state's jobs.
    pub(crate) deep_ms: f64,
    /// How long filling the table took.
    pub(crate) load: Duration,
}

/// Fills a table of `rows` jobs, then times `repeats` loads of each page.
pub(crate) async fn run(scratch: &Scratch, rows: usize, repeats: usize) -> Result<Paged> {
    scratch.migrate_plain().await?;
    let mut raw = Raw::connect(scratch.url()).await?;
    let started = Instant::now();
    fill(&mut raw, rows).await?;
    let load = started.elapsed();
    let deep = id_at(&mut raw, "Succeeded", rows * 85 / 100 / 2).await?;
    raw.close().await?;

    let jobs = scratch.jobs().await?;
    let query = JobQuery::state(JobState::Succeeded).limit(PAGE);
    let first_ms = page_ms(&jobs, &query, repeats).await?;
    let deep_ms = page_ms(&jobs, &query.clone().after(deep), repeats).await?;
    Ok(Paged {
        first_ms,
        deep_ms,
        load,
    })
}

/// Loads the page once to warm up, then `repeats` times → median ms.
async fn page_ms(jobs: &Jobs, query: &JobQuery, repeats: usize) -> Result<f64> {
    let page = jobs.list(query.clone()).await?;
    anyhow::ensure!(page.items.len() == PAGE as usize, "a short page");
    median_ms(repeats, || async {
        jobs.list(query.clone()).await?;
        Ok(())
    })
    .await
}

/// The id of the `offset`-th newest job in `state`.
async fn id_at(raw: &mut Raw, state: &str, offset: usize) -> Result<JobId> {
    let offset = i64::try_from(offset)?;
    Ok(match raw {
        Raw::Sqlite(conn) => {
            let id: String = sqlx::query_scalar(
                "SELECT id FROM jobs_job WHERE state = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
            )
            .bind(state)
            .bind(offset)
            .fetch_one(&mut *conn)
            .await?;
            JobId::from_str(&id)?
        }
        Raw::Postgres(conn) => {
            let id: Uuid = sqlx::query_scalar(
                "SELECT id FROM jobs_job WHERE state = $1 ORDER BY id DESC LIMIT 1 OFFSET $2",
            )
            .bind(state)
            .bind(offset)
            .fetch_one(&mut *conn)
            .await?;
            JobId::from(id)
        }
    })
}

async fn fill(raw: &mut Raw, rows: usize) -> Result<()> {
    fill_over(raw, rows, SPAN, Duration::ZERO).await
}

/// `rows` jobs created over `span`, ending `ago` before now.
async fn fill_over(raw: &mut Raw, rows: usize, span: Duration, ago: Duration) -> Result<()> {
    let rows = i64::try_from(rows)?;
    let span = i64::try_from(span.as_micros())?;
    let step = span / rows.max(1);
    let start = Utc::now().timestamp_micros() - span - i64::try_from(ago.as_micros())?;
    match raw {
        Raw::Sqlite(conn) => {
            sqlx::query(SQLITE_FILL)
                .bind(rows)
                .bind(start)
                .bind(step)
                .execute(&mut *conn)
                .await?;
        }
        Raw::Postgres(conn) => {
            sqlx::query(POSTGRES_FILL)
                .bind(rows)
                .bind(start)
                .bind(step)
                .execute(&mut *conn)
                .await?;
            // Autovacuum would analyze the table soon after such a load; do it now.
            sqlx::query("VACUUM ANALYZE jobs_job")
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// [`fill`] over the last day (jobs the server's maintenance does not prune yet, as
/// they stand on a busy system), then ends the generated table's unfinished jobs (as
/// succeeded), so that a drain on the table runs only its own; analyzed again on
/// PostgreSQL.
pub(crate) async fn fill_finished(raw: &mut Raw, rows: usize) -> Result<()> {
    fill_finished_before(raw, rows, Duration::ZERO).await
}

/// [`fill_finished`] over a day that ended `ago` before now: with `ago` past the
/// server's retention of succeeded jobs (36 h), rows its maintenance prunes.
pub(crate) async fn fill_finished_before(raw: &mut Raw, rows: usize, ago: Duration) -> Result<()> {
    fill_over(raw, rows, RECENT, ago).await?;
    finish_and_settle(raw).await
}

/// Ends the table's unfinished jobs (as succeeded), then leaves the table as a busy
/// system's stands: on SQLite its log copied into the database file, on PostgreSQL
/// vacuumed, analyzed and checkpointed.
pub(crate) async fn finish_and_settle(raw: &mut Raw) -> Result<()> {
    const FINISH: &str = "UPDATE jobs_job SET state = 'Succeeded', owner = NULL, \
                          lease_until = NULL WHERE state IN ('Enqueued', 'Scheduled', 'Processing')";
    raw.execute(FINISH).await?;
    match raw {
        Raw::Sqlite(conn) => {
            // The generated rows into the database file, as SQLite's automatic
            // checkpoints would have done long since: otherwise the first checkpoint of
            // the figure copies gigabytes of log, and every read searches a big log.
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut *conn)
                .await?;
        }
        Raw::Postgres(conn) => {
            sqlx::query("VACUUM ANALYZE jobs_job")
                .execute(&mut *conn)
                .await?;
            // Likewise the generated rows onto disk before the figure, not in the
            // checkpoints its writes would otherwise share the disk with. CHECKPOINT
            // needs a superuser (or pg_checkpoint): without one, say so and go on.
            if let Err(error) = sqlx::query("CHECKPOINT").execute(&mut *conn).await {
                eprintln!(
                    "   no CHECKPOINT after the fill ({error}): the figure shares the disk with it"
                );
            }
        }
    }
    Ok(())
}

/// `?1` rows, the first created at `?2` (µs since the epoch), one every `?3` µs.
const SQLITE_FILL: &str = "\
WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < ?1),
shaped AS (SELECT i, ?2 + i * ?3 AS at, i % 100 AS bucket, i % 4 AS kind FROM seq)
INSERT INTO jobs_job (id, name, display_name, payload, state, queue, priority, run_at,
    attempt, max_retries, owner, lease_until, last_error, created_at, updated_at, labels)
SELECT
    printf('%08x-%04x-7%03x-%04x-%012x', (at / 1000) >> 16, (at / 1000) & 65535,
        random() & 4095, 32768 | (random() & 16383), random() & 281474976710655),
    CASE kind WHEN 0 THEN 'agent::summarize_document' WHEN 1 THEN 'agent::send_reminder'
        WHEN 2 THEN 'agent::embed_chunk' ELSE 'agent::call_model' END,
    CASE kind WHEN 0 THEN 'Summarize document ' || i WHEN 1 THEN 'Send reminder to ' || (i % 997)
        WHEN 2 THEN 'Embed chunk ' || i ELSE 'Call model for ' || i END,
    json_object('document_id', i, 'user_id', i % 997),
    CASE WHEN bucket < 85 THEN 'Succeeded' WHEN bucket < 90 THEN 'Failed'
        WHEN bucket < 94 THEN 'Deleted' WHEN bucket < 97 THEN 'Enqueued'
        WHEN bucket < 98 THEN 'Scheduled' ELSE 'Processing' END,
    'default',
    0,
    CASE WHEN bucket = 97 THEN at + 86400000000 ELSE at END,
    CASE WHEN bucket < 85 THEN 1 WHEN bucket < 90 THEN 11 WHEN bucket < 97 THEN 0 ELSE 1 END,
    CASE WHEN kind = 3 THEN 3 END,
    CASE WHEN bucket >= 98 THEN 'bench-server' END,
    CASE WHEN bucket >= 98 THEN at + 20000000 END,
    CASE WHEN bucket BETWEEN 85 AND 89 OR bucket = 97 THEN 'model call timed out after 30 s' END,
    at,
    CASE WHEN bucket < 85 THEN at + 2000000 WHEN bucket < 90 THEN at + 3600000000 ELSE at END,
    CASE WHEN i % 100 = 7 THEN '[\"vip\"]' ELSE '[]' END
FROM shaped";

/// `$1` rows, the first created at `$2` (µs since the epoch), one every `$3` µs; named
/// created as the library's inserts name theirs, and counted by state as they count
/// theirs (PostgreSQL migrations 41 and 42).
const POSTGRES_FILL: &str = "\
WITH inserted AS (
INSERT INTO jobs_job (id, name, display_name, payload, state, queue, priority, run_at,
    attempt, max_retries, owner, lease_until, last_error, created_at, updated_at, labels,
    created_state)
SELECT
    (lpad(to_hex(at_us / 1000), 12, '0') || '7' || lpad(to_hex((random() * 4095)::int), 3, '0')
        || to_hex(8 + (random() * 3)::int) || lpad(to_hex((random() * 4095)::int), 3, '0')
        || lpad(to_hex((random() * 281474976710655)::bigint), 12, '0'))::uuid,
    (ARRAY['agent::summarize_document', 'agent::send_reminder', 'agent::embed_chunk',
        'agent::call_model'])[kind + 1],
    CASE kind WHEN 0 THEN 'Summarize document ' || i WHEN 1 THEN 'Send reminder to ' || (i % 997)
        WHEN 2 THEN 'Embed chunk ' || i ELSE 'Call model for ' || i END,
    json_build_object('document_id', i, 'user_id', i % 997),
    state,
    'default',
    0,
    CASE WHEN bucket = 97 THEN at + interval '1 day' ELSE at END,
    CASE WHEN bucket < 85 THEN 1 WHEN bucket < 90 THEN 11 WHEN bucket < 97 THEN 0 ELSE 1 END,
    CASE WHEN kind = 3 THEN 3 END,
    CASE WHEN bucket >= 98 THEN 'bench-server' END,
    CASE WHEN bucket >= 98 THEN at + interval '20 seconds' END,
    CASE WHEN bucket BETWEEN 85 AND 89 OR bucket = 97 THEN 'model call timed out after 30 s' END,
    at,
    CASE WHEN bucket < 85 THEN at + interval '2 seconds'
        WHEN bucket < 90 THEN at + interval '1 hour' ELSE at END,
    CASE WHEN i % 100 = 7 THEN '[\"vip\"]'::json ELSE '[]'::json END,
    state
FROM (
    SELECT *, CASE WHEN bucket < 85 THEN 'Succeeded' WHEN bucket < 90 THEN 'Failed'
        WHEN bucket < 94 THEN 'Deleted' WHEN bucket < 97 THEN 'Enqueued'
        WHEN bucket < 98 THEN 'Scheduled' ELSE 'Processing' END AS state
    FROM (
        SELECT i, at_us, to_timestamp(at_us / 1000000.0) AS at, i % 100 AS bucket,
            i % 4 AS kind
        FROM (SELECT i, $2::bigint + i * $3::bigint AS at_us
              FROM generate_series(0::bigint, $1::bigint - 1) AS i) AS seq
    ) AS bucketed
) AS shaped
RETURNING state
)
INSERT INTO jobs_state_delta (state, n) SELECT state, count(*) FROM inserted GROUP BY state";
