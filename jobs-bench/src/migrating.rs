//! A rolling deploy's migration on a big table while another node drains: the node that
//! starts on the new release builds the newest index of the job table (an index of
//! partitioned limits) on a table of many finished jobs, and the draining node's
//! longest stretch without a finished job while that runs is the stall. Measured the
//! library's way (`CREATE INDEX CONCURRENTLY`, outside the migration's transaction) and
//! the way it was before (the same index built inside a transaction), on PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;
use jobs::JobServer;
use tokio::time::Instant;

use crate::db::{Client, Raw, Scratch};
use crate::enqueue;
use crate::list;
use crate::work::Tally;
use jobs::prelude::*;

/// A job of a millisecond (a quick API call): a backlog of them lasts long enough to
/// measure against, and the drain still runs thousands a second.
#[job]
pub(crate) async fn paced(State(tally): State<Tally>, n: u32) {
    let _ = n;
    tokio::time::sleep(Duration::from_millis(1)).await;
    tally.add();
}

/// The newest migration that builds indexes of the job table concurrently, undone
/// before each run so that the starting node applies it: its version and indexes.
const NEWEST_INDEX_MIGRATION: i64 = 27;
const NEWEST_INDEXES: [&str; 2] = [
    "CREATE INDEX IF NOT EXISTS jobs_job_processing_key ON jobs_job (concurrency_key) \
     WHERE state = 'Processing' AND concurrency_key IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS jobs_job_keyed \
     ON jobs_job (concurrency_key, priority DESC, run_at, id) \
     WHERE state IN ('Enqueued', 'Scheduled') AND concurrency_key IS NOT NULL",
];
const NEWEST_INDEX_NAMES: [&str; 2] = ["jobs_job_processing_key", "jobs_job_keyed"];

/// How the starting node builds the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Build {
    /// The library's migration: `CONCURRENTLY`, apart from the transaction.
    Library,
    /// The same index inside a transaction, as migrations ran before.
    InTransaction,
}

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stall {
    /// How long the migration took.
    pub(crate) migration: Duration,
    /// The draining node's longest stretch without a finished job while it ran.
    pub(crate) longest_gap: Duration,
}

/// Fills `old` finished jobs and a backlog of `backlog` no-op jobs, starts a server
/// of `workers` on them, then builds the newest index as `build` says while it drains.
pub(crate) async fn stall_while_migrating(
    scratch: &Scratch,
    old: usize,
    backlog: usize,
    workers: usize,
    build: Build,
) -> Result<Stall> {
    scratch.migrate().await?;
    let mut raw = Raw::connect(scratch.url()).await?;
    list::fill_finished(&mut raw, old).await?;
    raw.execute("ANALYZE jobs_job").await?;
    let filler = Client::open(scratch, None).await?;
    enqueue::backlog(&filler.jobs, backlog, |n| Paced { n }).await?;
    filler.close().await;

    let client = Client::open(scratch, None).await?;
    let tally = Tally::default();
    let server = JobServer::builder(client.jobs.clone())
        .state(tally.clone())
        .worker_count(workers)
        .start()
        .await?;
    // Samples the finished count: the longest stretch without one while `during`.
    let during = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn({
        let (tally, during) = (tally.clone(), during.clone());
        async move {
            let (mut last, mut changed) = (tally.count(), Instant::now());
            let (mut longest, mut seen) = (Duration::ZERO, false);
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                let count = tally.count();
                if count != last {
                    (last, changed) = (count, Instant::now());
                }
                if during.load(Ordering::Relaxed) {
                    seen = true;
                    longest = longest.max(changed.elapsed());
                } else if seen {
                    return longest;
                }
            }
        }
    });
    // The schema as the release before had it (each client above migrated on connect).
    for name in NEWEST_INDEX_NAMES {
        raw.execute(&format!("DROP INDEX IF EXISTS {name}")).await?;
    }
    raw.execute(&format!(
        "DELETE FROM jobs_migration WHERE version = {NEWEST_INDEX_MIGRATION}"
    ))
    .await?;
    // Under way: the first results are written.
    let start = tally.count();
    while tally.count() < start + 100 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    during.store(true, Ordering::Relaxed);
    let began = Instant::now();
    match build {
        Build::Library => {
            // A node of the new release starts: its connect migrates.
            jobs::Jobs::connect(scratch.url()).await?;
        }
        Build::InTransaction => {
            raw.execute("BEGIN").await?;
            for index in NEWEST_INDEXES {
                raw.execute(index).await?;
            }
            raw.execute(&format!(
                "INSERT INTO jobs_migration (version, description) \
                 VALUES ({NEWEST_INDEX_MIGRATION}, 'in a transaction')"
            ))
            .await?;
            raw.execute("COMMIT").await?;
        }
    }
    let migration = began.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    during.store(false, Ordering::Relaxed);
    let longest_gap = sampler.await?;
    let ran = tally.count();
    server.shutdown().await;
    anyhow::ensure!(
        ran < backlog,
        "the backlog of {backlog} ran out before the migration ended: give a bigger one"
    );
    client.close().await;
    raw.close().await?;
    Ok(Stall {
        migration,
        longest_gap,
    })
}
