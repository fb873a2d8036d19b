//! The practical limits: what plain sqlx does on the same kind of database, on the
//! `jobs_job` table itself (fresh database, the library's migration applied without its
//! SQLite history triggers, nothing else), with rows exactly like the ones
//! `jobs.enqueue(Noop { n })` writes. Unlike the library, these write no history rows and
//! notify nobody, and the SQLite claim names
//! the partial index of runnable rows (`INDEXED BY`) so that it never sorts the backlog.

use std::ops::Range;
use std::time::Duration;

use anyhow::{Result, ensure};
use chrono::{DateTime, Utc};
use jobs::Job;
use sqlx::{QueryBuilder, Sqlite};
use tokio::time::Instant;
use uuid::Uuid;

use crate::db::Raw;
use crate::stats::{Throughput, cpu_time};
use crate::work::Noop;

/// Rows per statement (and transaction) of the bulk insert.
pub(crate) const BULK: usize = 1_000;
/// Rows per claim and per completion of the claim + complete baseline.
pub(crate) const CLAIM: usize = 100;

/// A row as `jobs.enqueue(Noop { n })` would write it.
struct Sample {
    id: Uuid,
    display_name: String,
    payload: String,
    at: DateTime<Utc>,
}

impl Sample {
    fn new(n: usize) -> Result<Self> {
        let job = Noop {
            n: u32::try_from(n).unwrap_or(u32::MAX),
        };
        Ok(Self {
            id: Uuid::now_v7(),
            display_name: job.display_name(),
            payload: serde_json::to_string(&job)?,
            at: Utc::now(),
        })
    }
}

fn name() -> &'static str {
    Noop::DESCRIPTOR.name()
}

/// Inserts rows numbered `rows` one statement (one transaction) at a time → the time
/// it took.
pub(crate) async fn insert_single(raw: &mut Raw, rows: Range<usize>) -> Result<Duration> {
    let started = Instant::now();
    for i in rows {
        insert(raw, &[Sample::new(i)?]).await?;
    }
    Ok(started.elapsed())
}

/// Inserts [`BULK`] rows per batch numbered `batches`, one statement (one transaction)
/// per batch → the time it took.
pub(crate) async fn insert_bulk(raw: &mut Raw, batches: Range<usize>) -> Result<Duration> {
    let started = Instant::now();
    for batch in batches {
        let rows = (batch * BULK..(batch + 1) * BULK)
            .map(Sample::new)
            .collect::<Result<Vec<_>>>()?;
        insert(raw, &rows).await?;
    }
    Ok(started.elapsed())
}

/// Inserts `rows` in one statement: a `VALUES` list on SQLite, arrays through `UNNEST`
/// on PostgreSQL.
async fn insert(raw: &mut Raw, rows: &[Sample]) -> Result<()> {
    match raw {
        Raw::Sqlite(conn) => {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO jobs_job (id, name, display_name, payload, state, queue, \
                     priority, run_at, max_retries, created_at, updated_at) ",
            );
            insert.push_values(rows, |mut values, row| {
                values
                    .push_bind(row.id.to_string())
                    .push_bind(name())
                    .push_bind(&row.display_name)
                    .push_bind(&row.payload)
                    .push_bind("Enqueued")
                    .push_bind("default")
                    .push_bind(0_i32)
                    .push_bind(row.at.timestamp_micros())
                    .push_bind(None::<i64>)
                    .push_bind(row.at.timestamp_micros())
                    .push_bind(row.at.timestamp_micros());
            });
            insert.build().execute(&mut *conn).await?;
        }
        Raw::Postgres(conn) => {
            sqlx::query(
                "INSERT INTO jobs_job (id, name, display_name, payload, state, queue, \
                     priority, run_at, max_retries, created_at, updated_at) \
                 SELECT id, $2, display_name, payload::json, 'Enqueued', 'default', 0, \
                     at, NULL, at, at \
                 FROM UNNEST($1::uuid[], $3::text[], $4::text[], $5::timestamptz[]) \
                     AS new (id, display_name, payload, at)",
            )
            .bind(rows.iter().map(|row| row.id).collect::<Vec<_>>())
            .bind(name())
            .bind(
                rows.iter()
                    .map(|row| row.display_name.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                rows.iter()
                    .map(|row| row.payload.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(rows.iter().map(|row| row.at).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// Loads `n` enqueued rows on the database at `url` (not timed), then has `claimers`
/// loops, each on a connection of its own, claim [`CLAIM`]
/// rows in one transaction and mark them `Succeeded` in another, until none are left →
/// rows/s. Two commits per [`CLAIM`] jobs: the claim must commit before the jobs run.
pub(crate) async fn claim_complete(url: &str, n: usize, claimers: usize) -> Result<f64> {
    Ok(claim_complete_with(url, n, claimers, false).await?.wall)
}

/// [`claim_complete`], writing the history as the library does (`history`; SQLite
/// only): the claim says each attempt's start in the job row (with the history
/// triggers in place, it then writes no history row) and each success says its end
/// and its server there too (migrations 33 and 34): no history row at all.
pub(crate) async fn claim_complete_with(
    url: &str,
    n: usize,
    claimers: usize,
    history: bool,
) -> Result<Throughput> {
    let mut raw = Raw::connect(url).await?;
    insert_bulk(&mut raw, 0..n.div_ceil(BULK)).await?;
    let total = usize::try_from(raw.count("Enqueued").await?)?;
    let mut connections = Vec::with_capacity(claimers);
    for _ in 0..claimers {
        connections.push(Raw::connect(url).await?);
    }
    let started = Instant::now();
    let cpu_started = cpu_time()?;
    let mut loops = tokio::task::JoinSet::new();
    for (claimer, mut conn) in connections.into_iter().enumerate() {
        loops.spawn(async move {
            claim_loop(&mut conn, &format!("baseline-{claimer}"), history).await?;
            conn.close().await
        });
    }
    while let Some(done) = loops.join_next().await {
        done??;
    }
    let elapsed = started.elapsed();
    let cpu = cpu_time()? - cpu_started;
    let succeeded = usize::try_from(raw.count("Succeeded").await?)?;
    raw.close().await?;
    ensure!(succeeded == total, "{succeeded} of {total} rows completed");
    Ok(Throughput::of(total, elapsed, cpu))
}

async fn claim_loop(raw: &mut Raw, owner: &str, history: bool) -> Result<()> {
    let lease = chrono::Duration::from_std(Duration::from_secs(20))?;
    loop {
        let now = Utc::now();
        let claimed: Vec<Uuid> = match raw {
            Raw::Sqlite(conn) => {
                let start = if history {
                    ", token = token + 1, started_token = token + 1, started_at = ?3"
                } else {
                    ""
                };
                let rows: Vec<(String, String, String, i64)> = sqlx::query_as(&format!(
                    "UPDATE jobs_job SET state = 'Processing', attempt = attempt + 1, \
                         owner = ?1, lease_until = ?2, updated_at = ?3{start} \
                     WHERE id IN (SELECT id FROM jobs_job INDEXED BY jobs_job_runnable \
                         WHERE state IN ('Enqueued', 'Scheduled') AND run_at <= ?3 \
                         ORDER BY priority DESC, run_at LIMIT ?4) \
                     RETURNING id, name, payload, attempt",
                ))
                .bind(owner)
                .bind((now + lease).timestamp_micros())
                .bind(now.timestamp_micros())
                .bind(CLAIM as i64)
                .fetch_all(&mut *conn)
                .await?;
                rows.iter()
                    .map(|(id, ..)| Ok(Uuid::parse_str(id)?))
                    .collect::<Result<_>>()?
            }
            Raw::Postgres(conn) => {
                let rows: Vec<(Uuid, String, String, i32)> = sqlx::query_as(
                    "WITH picked AS ( \
                         SELECT id FROM jobs_job \
                         WHERE state IN ('Enqueued', 'Scheduled') AND run_at <= $3 \
                         ORDER BY priority DESC, run_at LIMIT $4 \
                         FOR UPDATE SKIP LOCKED \
                     ) \
                     UPDATE jobs_job AS job SET state = 'Processing', \
                         attempt = job.attempt + 1, owner = $1, lease_until = $2, \
                         updated_at = $3 \
                     FROM picked WHERE job.id = picked.id \
                     RETURNING job.id, job.name, job.payload::text, job.attempt",
                )
                .bind(owner)
                .bind(now + lease)
                .bind(now)
                .bind(CLAIM as i64)
                .fetch_all(&mut *conn)
                .await?;
                rows.into_iter().map(|(id, ..)| id).collect()
            }
        };
        if claimed.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        match raw {
            Raw::Sqlite(conn) => {
                let mut complete = QueryBuilder::<Sqlite>::new(
                    "UPDATE jobs_job SET state = 'Succeeded', owner = NULL, lease_until = NULL, ",
                );
                if history {
                    complete
                        .push("started_token = NULL, succeeded_by = ")
                        .push_bind(owner)
                        .push(", ");
                }
                complete
                    .push("updated_at = ")
                    .push_bind(now.timestamp_micros())
                    .push(" WHERE owner = ")
                    .push_bind(owner)
                    .push(" AND state = 'Processing' AND id IN (");
                let mut ids = complete.separated(", ");
                for id in &claimed {
                    ids.push_bind(id.to_string());
                }
                complete.push(")");
                complete.build().execute(&mut *conn).await?;
            }
            Raw::Postgres(conn) => {
                sqlx::query(
                    "UPDATE jobs_job SET state = 'Succeeded', owner = NULL, lease_until = NULL, \
                         updated_at = $2 \
                     WHERE id = ANY($1) AND owner = $3 AND state = 'Processing'",
                )
                .bind(&claimed)
                .bind(now)
                .bind(owner)
                .execute(&mut *conn)
                .await?;
            }
        }
    }
}
