//! A steady stream on PostgreSQL: a server drains while a producer keeps about
//! [`WAITING`] jobs waiting, until `n` jobs have passed through, with the server
//! pruning the succeeded jobs past a short retention as it does in production. Along
//! the way and at the end it reads the size of the tables the library writes per job,
//! their live and dead tuples and how many of their updates were HOT: what the tables
//! look like after millions of jobs with autovacuum as the server has it.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use jobs::JobServer;
use sqlx::{Connection, PgConnection, Row};
use tokio::time::Instant;

use crate::db::{Client, Raw, Scratch};
use crate::stats::rate;
use crate::work::{Noop, Tally};

/// The jobs kept waiting while the server drains.
pub(crate) const WAITING: usize = 1_000;

/// Most jobs one `enqueue_many` of the producer writes.
const BATCH: usize = 1_000;

/// How long a server succeeded jobs are kept here (the server's
/// `delete_succeeded_after`). The production default (36 h) would keep every job of a
/// run of minutes, so the table would only grow; a retention of seconds lets the run
/// cover many retention periods, so a steady state shows. At the 10,000–20,000 jobs/s
/// of this run it keeps 100,000–200,000 succeeded jobs, as many as the 36 h default
/// keeps for an application running one or two jobs a second.
pub(crate) const RETENTION: Duration = Duration::from_secs(10);

/// The tables a job writes: its row, its history (a row per state change) and, when
/// the job has them, its labels, logs and steps. The prune deletes from all five.
pub(crate) const PER_JOB: [&str; 5] = [
    "jobs_job",
    "jobs_event",
    "jobs_job_label",
    "jobs_log",
    "jobs_step",
];

/// Longest the stream may go without a finished job before the figure is abandoned.
const STALL: Duration = Duration::from_secs(120);

/// One table at one point of the run, from `pg_stat_user_tables` and the size functions.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    /// Its name.
    pub(crate) name: String,
    /// `pg_total_relation_size`: heap, indexes and TOAST, bytes.
    pub(crate) total: i64,
    /// `pg_relation_size`: the heap, bytes.
    pub(crate) heap: i64,
    /// `pg_indexes_size`, bytes.
    pub(crate) indexes: i64,
    /// `n_live_tup`.
    pub(crate) live: i64,
    /// `n_dead_tup`.
    pub(crate) dead: i64,
    /// `n_tup_upd`.
    pub(crate) updates: i64,
    /// `n_tup_hot_upd`.
    pub(crate) hot: i64,
    /// `autovacuum_count`.
    pub(crate) autovacuums: i64,
}

impl Table {
    /// The share of its updates that were HOT (0–1); `None` before any update.
    pub(crate) fn hot_share(&self) -> Option<f64> {
        (self.updates > 0).then(|| self.hot as f64 / self.updates as f64)
    }
}

/// The tables after this many jobs.
#[derive(Debug, Clone)]
pub(crate) struct Reading {
    /// Jobs that had passed through.
    pub(crate) passed: usize,
    /// Since the server started.
    pub(crate) elapsed: Duration,
    /// The tables of [`PER_JOB`].
    pub(crate) tables: Vec<Table>,
}

impl Reading {
    /// The reading of `name`.
    pub(crate) fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|table| table.name == name)
    }
}

/// What the run gave.
#[derive(Debug, Clone)]
pub(crate) struct Steady {
    /// Every tenth of the run, then the end (after the server stopped and the stats
    /// were flushed).
    pub(crate) readings: Vec<Reading>,
    /// The server's autovacuum settings, as `name=value, …`.
    pub(crate) autovacuum: String,
    /// Jobs per second through the whole run.
    pub(crate) rate: f64,
    /// The mean of the waiting jobs seen at each producer step.
    pub(crate) waiting: f64,
}

/// Runs `n` no-op jobs through a server of `workers` workers, about [`WAITING`] waiting
/// at any time, pruned past [`RETENTION`]; reads the tables every tenth of `n` (through
/// `report`, as it goes) and at the end.
pub(crate) async fn run(
    scratch: &Scratch,
    n: usize,
    workers: usize,
    mut report: impl FnMut(&Reading),
) -> Result<Steady> {
    scratch.migrate().await?;
    let Raw::Postgres(mut stats) = Raw::connect(scratch.url()).await? else {
        bail!("the steady stream reads PostgreSQL's statistics: PostgreSQL only");
    };
    let autovacuum = autovacuum_settings(&mut stats).await?;
    let client = Client::open(scratch, None).await?;
    let tally = Tally::default();
    let started = Instant::now();
    let server = JobServer::builder(client.jobs.clone())
        .state(tally.clone())
        .worker_count(workers)
        .delete_succeeded_after(RETENTION)
        .start()
        .await?;
    let step = (n / 10).max(1);
    let mut next = step;
    let mut readings = Vec::new();
    let mut enqueued = 0;
    let (mut seen, mut seen_sum) = (0_usize, 0_usize);
    let (mut last, mut last_progress) = (0, Instant::now());
    loop {
        let passed = tally.count();
        if passed >= n {
            break;
        }
        if passed != last {
            (last, last_progress) = (passed, Instant::now());
        } else if last_progress.elapsed() > STALL {
            bail!("no job finished for {STALL:?} after {passed} of {n}");
        }
        if passed >= next && next < n {
            let reading = read(&mut stats, passed, started.elapsed()).await?;
            report(&reading);
            readings.push(reading);
            next += step;
        }
        let waiting = enqueued - passed.min(enqueued);
        seen += 1;
        seen_sum += waiting;
        if enqueued < n && waiting < WAITING {
            let more = (WAITING - waiting).min(n - enqueued).min(BATCH);
            client
                .jobs
                .enqueue_many((enqueued..enqueued + more).map(|i| Noop {
                    n: u32::try_from(i).unwrap_or(u32::MAX),
                }))
                .await?;
            enqueued += more;
        } else {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let elapsed = started.elapsed();
    server.shutdown().await;
    client.close().await;
    // Each backend sends its table statistics at most once a second while busy, and
    // at once when it exits: with the client's connections gone they are complete.
    flushed(&mut stats).await?;
    let end = read(&mut stats, n, elapsed).await?;
    report(&end);
    readings.push(end);
    stats.close().await?;
    Ok(Steady {
        readings,
        autovacuum,
        rate: rate(n, elapsed),
        waiting: seen_sum as f64 / seen.max(1) as f64,
    })
}

/// The autovacuum settings that decide when a table is vacuumed: the server's, then
/// those of `jobs_job` itself (set by the migrations; they win over the server's).
async fn autovacuum_settings(conn: &mut PgConnection) -> Result<String> {
    let server: String = sqlx::query_scalar(
        "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ', ' ORDER BY name) \
         FROM pg_settings WHERE name IN ('autovacuum', 'autovacuum_naptime', \
             'autovacuum_vacuum_scale_factor', 'autovacuum_vacuum_threshold', \
             'autovacuum_vacuum_insert_scale_factor', 'autovacuum_vacuum_cost_limit', \
             'autovacuum_vacuum_cost_delay')",
    )
    .fetch_one(&mut *conn)
    .await?;
    let table: Option<String> = sqlx::query_scalar(
        "SELECT array_to_string(reloptions, ', ') FROM pg_class \
         WHERE oid = to_regclass('jobs_job')",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(match table.filter(|options| !options.is_empty()) {
        Some(options) => format!("{server}; jobs_job: {options}"),
        None => format!("{server}; jobs_job: the server's"),
    })
}

/// Waits until no other client is connected to the database, so that every backend
/// of the run has sent its statistics (see `Commits::read`).
async fn flushed(conn: &mut PgConnection) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let others: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
                 AND backend_type = 'client backend'",
        )
        .fetch_one(&mut *conn)
        .await?;
        if others == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{others} connections stayed open; the statistics may be incomplete");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The tables of [`PER_JOB`] now.
async fn read(conn: &mut PgConnection, passed: usize, elapsed: Duration) -> Result<Reading> {
    let rows = sqlx::query(
        "SELECT s.relname::text, pg_total_relation_size(s.relid), pg_relation_size(s.relid), \
             pg_indexes_size(s.relid), s.n_live_tup, s.n_dead_tup, s.n_tup_upd, \
             s.n_tup_hot_upd, s.autovacuum_count \
         FROM pg_stat_user_tables AS s \
         WHERE s.schemaname = current_schema() AND s.relname = ANY($1) \
         ORDER BY array_position($1, s.relname::text)",
    )
    .bind(PER_JOB.map(str::to_owned).to_vec())
    .fetch_all(&mut *conn)
    .await?;
    let tables = rows
        .iter()
        .map(|row| {
            Ok(Table {
                name: row.try_get(0)?,
                total: row.try_get(1)?,
                heap: row.try_get(2)?,
                indexes: row.try_get(3)?,
                live: row.try_get(4)?,
                dead: row.try_get(5)?,
                updates: row.try_get(6)?,
                hot: row.try_get(7)?,
                autovacuums: row.try_get(8)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    tables
        .iter()
        .find(|table| table.name == "jobs_job")
        .context("no statistics for jobs_job")?;
    Ok(Reading {
        passed,
        elapsed,
        tables,
    })
}

/// Bytes → megabytes (10⁶).
pub(crate) fn megabytes(bytes: i64) -> f64 {
    bytes as f64 / 1e6
}
