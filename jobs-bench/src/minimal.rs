//! The real limit: a minimal job table (id, state, run_at, payload and one partial
//! index), written and claimed by hand with the same designs as the other baselines (one
//! row per `INSERT`, 1,000 rows per `INSERT`, claim 100 in one transaction and complete
//! them in another) and the same connection settings as the library (SQLite: WAL,
//! `synchronous = NORMAL`). The other baselines run on the library's own table, with
//! its columns and indexes; this one says how close the library is to what the
//! database can do.

use std::ops::Range;
use std::time::Duration;

use anyhow::{Result, ensure};
use chrono::Utc;
use sqlx::{QueryBuilder, Sqlite};
use tokio::time::Instant;
use uuid::Uuid;

use crate::baseline::{BULK, CLAIM};
use crate::db::Raw;
use crate::stats::{Throughput, cpu_time};

const SQLITE_SCHEMA: [&str; 2] = [
    "CREATE TABLE minimal_job (id TEXT PRIMARY KEY, state TEXT NOT NULL, \
         run_at INTEGER NOT NULL, payload TEXT NOT NULL)",
    "CREATE INDEX minimal_job_runnable ON minimal_job (run_at) WHERE state = 'Enqueued'",
];

const POSTGRES_SCHEMA: [&str; 2] = [
    "CREATE TABLE minimal_job (id uuid PRIMARY KEY, state text NOT NULL, \
         run_at timestamptz NOT NULL, payload json NOT NULL)",
    "CREATE INDEX minimal_job_runnable ON minimal_job (run_at) WHERE state = 'Enqueued'",
];

/// Creates the minimal table on a fresh database.
pub(crate) async fn create(raw: &mut Raw) -> Result<()> {
    let schema = match raw {
        Raw::Sqlite(_) => SQLITE_SCHEMA,
        Raw::Postgres(_) => POSTGRES_SCHEMA,
    };
    for statement in schema {
        raw.execute(statement).await?;
    }
    Ok(())
}

/// Inserts rows numbered `rows`, one statement (one transaction) each → the time it
/// took.
pub(crate) async fn insert_single(raw: &mut Raw, rows: Range<usize>) -> Result<Duration> {
    let started = Instant::now();
    for i in rows {
        insert(raw, i..i + 1).await?;
    }
    Ok(started.elapsed())
}

/// Inserts [`BULK`] rows per statement (one transaction each) for the batches numbered
/// `batches` → the time it took.
pub(crate) async fn insert_bulk(raw: &mut Raw, batches: Range<usize>) -> Result<Duration> {
    let started = Instant::now();
    for batch in batches {
        insert(raw, batch * BULK..(batch + 1) * BULK).await?;
    }
    Ok(started.elapsed())
}

/// The payload `jobs.enqueue(Noop { n })` stores.
fn payload(n: usize) -> String {
    format!("{{\"n\":{n}}}")
}

async fn insert(raw: &mut Raw, rows: Range<usize>) -> Result<()> {
    let now = Utc::now();
    match raw {
        Raw::Sqlite(conn) => {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO minimal_job (id, state, run_at, payload) ",
            );
            insert.push_values(rows, |mut values, n| {
                values
                    .push_bind(Uuid::now_v7().to_string())
                    .push_bind("Enqueued")
                    .push_bind(now.timestamp_micros())
                    .push_bind(payload(n));
            });
            insert.build().execute(&mut *conn).await?;
        }
        Raw::Postgres(conn) => {
            let ids: Vec<Uuid> = rows.clone().map(|_| Uuid::now_v7()).collect();
            let payloads: Vec<String> = rows.map(payload).collect();
            sqlx::query(
                "INSERT INTO minimal_job (id, state, run_at, payload) \
                 SELECT id, 'Enqueued', $2, payload::json \
                 FROM UNNEST($1::uuid[], $3::text[]) AS new (id, payload)",
            )
            .bind(ids)
            .bind(now)
            .bind(payloads)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// Loads `n` enqueued rows on the database at `url` (not timed), then has `claimers`
/// loops, each on a connection of its own, claim [`CLAIM`] rows in one transaction and
/// mark them succeeded in another until none are left → rows/s.
pub(crate) async fn claim_complete(url: &str, n: usize, claimers: usize) -> Result<f64> {
    Ok(claim_complete_measured(url, n, claimers).await?.wall)
}

/// [`claim_complete`], by the wall clock and by this process's CPU time.
pub(crate) async fn claim_complete_measured(
    url: &str,
    n: usize,
    claimers: usize,
) -> Result<Throughput> {
    let mut raw = Raw::connect(url).await?;
    create(&mut raw).await?;
    insert_bulk(&mut raw, 0..n.div_ceil(BULK)).await?;
    let total = raw.count_in("minimal_job", "Enqueued").await?;
    let mut loops = tokio::task::JoinSet::new();
    let mut connections = Vec::with_capacity(claimers);
    for _ in 0..claimers {
        connections.push(Raw::connect(url).await?);
    }
    let started = Instant::now();
    let cpu_started = cpu_time()?;
    for mut conn in connections {
        loops.spawn(async move {
            while claim_and_complete(&mut conn).await? > 0 {}
            conn.close().await
        });
    }
    while let Some(done) = loops.join_next().await {
        done??;
    }
    let elapsed = started.elapsed();
    let cpu = cpu_time()? - cpu_started;
    let succeeded = raw.count_in("minimal_job", "Succeeded").await?;
    raw.close().await?;
    ensure!(succeeded == total, "{succeeded} of {total} rows completed");
    Ok(Throughput::of(usize::try_from(total)?, elapsed, cpu))
}

/// Claims up to [`CLAIM`] due rows and marks them succeeded → how many it claimed.
async fn claim_and_complete(raw: &mut Raw) -> Result<usize> {
    let now = Utc::now();
    match raw {
        Raw::Sqlite(conn) => {
            let claimed: Vec<(String, String)> = sqlx::query_as(
                "UPDATE minimal_job SET state = 'Processing' \
                 WHERE id IN (SELECT id FROM minimal_job \
                     WHERE state = 'Enqueued' AND run_at <= ?1 ORDER BY run_at LIMIT ?2) \
                 RETURNING id, payload",
            )
            .bind(now.timestamp_micros())
            .bind(CLAIM as i64)
            .fetch_all(&mut *conn)
            .await?;
            if claimed.is_empty() {
                return Ok(0);
            }
            let mut complete = QueryBuilder::<Sqlite>::new(
                "UPDATE minimal_job SET state = 'Succeeded' WHERE id IN (",
            );
            let mut ids = complete.separated(", ");
            for (id, _) in &claimed {
                ids.push_bind(id);
            }
            complete.push(")");
            complete.build().execute(&mut *conn).await?;
            Ok(claimed.len())
        }
        Raw::Postgres(conn) => {
            let claimed: Vec<(Uuid, String)> = sqlx::query_as(
                "UPDATE minimal_job SET state = 'Processing' \
                 WHERE id IN (SELECT id FROM minimal_job \
                     WHERE state = 'Enqueued' AND run_at <= $1 ORDER BY run_at LIMIT $2 \
                     FOR UPDATE SKIP LOCKED) \
                 RETURNING id, payload::text",
            )
            .bind(now)
            .bind(CLAIM as i64)
            .fetch_all(&mut *conn)
            .await?;
            if claimed.is_empty() {
                return Ok(0);
            }
            let ids: Vec<Uuid> = claimed.iter().map(|(id, _)| *id).collect();
            sqlx::query("UPDATE minimal_job SET state = 'Succeeded' WHERE id = ANY($1)")
                .bind(ids)
                .execute(&mut *conn)
                .await?;
            Ok(claimed.len())
        }
    }
}
