//! Speed on a big table: the drain and single enqueues on a table that already holds
//! many finished jobs (not yet pruned), analyzed before the backlog arrived, as
//! autovacuum leaves it when a sudden backlog is still under its analyze threshold; the
//! dashboard's reads on that table; and the drain while the server prunes a table of
//! finished jobs past their retention.

use std::time::Duration;

use anyhow::Result;
use jobs::{JobQuery, JobState, Jobs};
use tokio::time::Instant;

use crate::db::{Client, Raw, Scratch};
use crate::drain;
use crate::list;
use crate::stats::{median_ms, rate};
use crate::work::Noop;

/// Past the server's default retention of succeeded jobs (36 h): rows it prunes.
const PRUNABLE: Duration = Duration::from_secs(3 * 24 * 3600);

/// A job name of the generated table (a quarter of its rows).
const NAME: &str = "agent::send_reminder";

/// A label of the generated table (one row in a hundred).
const LABEL: &str = "vip";

/// What one table gave.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measured {
    /// The drain, jobs/s.
    pub(crate) drain: f64,
    /// The dashboard's reads, on a big table only.
    pub(crate) reads: Option<Reads>,
}

/// Median milliseconds of the dashboard's reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reads {
    /// The newest page of 50 succeeded jobs.
    pub(crate) list: f64,
    /// The newest page of 50 jobs of one name.
    pub(crate) by_name: f64,
    /// The newest page of 50 jobs with one label.
    pub(crate) by_label: f64,
    /// The count of jobs by state (the overview's counts).
    pub(crate) counts: f64,
}

/// Fills a table of `old` finished jobs (then analyzed), drains `n` no-op jobs enqueued
/// after that with `workers` workers, then, when `old > 0`, times the dashboard's reads
/// (`repeats` each). The table stays, for [`enqueues_side_by_side`].
pub(crate) async fn on_big_table(
    scratch: &Scratch,
    old: usize,
    n: usize,
    workers: usize,
    repeats: usize,
) -> Result<Measured> {
    scratch.migrate().await?;
    if old > 0 {
        let mut raw = Raw::connect(scratch.url()).await?;
        list::fill_finished(&mut raw, old).await?;
        raw.close().await?;
    }
    let drain = drain::run(scratch, n, workers).await?.rate;
    let reads = if old > 0 {
        // A client closed at the end, so that nothing of it outlives the figure.
        let client = Client::open(scratch, None).await?;
        let reads = reads(&client.jobs, repeats).await;
        client.close().await;
        Some(reads?)
    } else {
        None
    };
    Ok(Measured { drain, reads })
}

/// Drains `n` more no-op jobs on the big table [`on_big_table`] left, once what it
/// holds is finished (the single enqueues that took turns on it) and its statistics
/// taken again, so that this backlog too arrives after them: a second sample of the
/// same drain → jobs/s.
pub(crate) async fn again_on_big_table(scratch: &Scratch, n: usize, workers: usize) -> Result<f64> {
    let mut raw = Raw::connect(scratch.url()).await?;
    list::finish_and_settle(&mut raw).await?;
    // The drain counts the database's commits: no other connection may be open.
    raw.close().await?;
    Ok(drain::run(scratch, n, workers).await?.rate)
}

/// Single enqueues on two tables in `rounds` turns, the first table first in even rounds
/// and second in odd ones, so that both see the same minutes of the disk (one commit
/// per call, whose latency moves from minute to minute) → jobs/s on each.
pub(crate) async fn enqueues_side_by_side(
    tables: [&Scratch; 2],
    singles: usize,
    rounds: usize,
) -> Result<[f64; 2]> {
    let clients = [
        Client::open(tables[0], None).await?,
        Client::open(tables[1], None).await?,
    ];
    let per_round = singles.div_ceil(rounds.max(1));
    let mut spent = [Duration::ZERO; 2];
    let mut done = [0; 2];
    let mut n: u32 = 0;
    for round in 0..rounds.max(1) {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let started = Instant::now();
            for _ in 0..per_round {
                clients[side].jobs.enqueue(Noop { n }).await?;
                n = n.wrapping_add(1);
            }
            spent[side] += started.elapsed();
            done[side] += per_round;
        }
    }
    for client in clients {
        client.close().await;
    }
    Ok([rate(done[0], spent[0]), rate(done[1], spent[1])])
}

async fn reads(jobs: &Jobs, repeats: usize) -> Result<Reads> {
    let page = |query: JobQuery| query.limit(50);
    Ok(Reads {
        list: median_ms(repeats, || async {
            jobs.list(page(JobQuery::state(JobState::Succeeded)))
                .await?;
            Ok(())
        })
        .await?,
        by_name: median_ms(repeats, || async {
            jobs.list(page(JobQuery::default().name(NAME))).await?;
            Ok(())
        })
        .await?,
        by_label: median_ms(repeats, || async {
            jobs.list(page(JobQuery::default().label(LABEL))).await?;
            Ok(())
        })
        .await?,
        counts: median_ms(repeats, || async {
            jobs.count_by_state().await?;
            Ok(())
        })
        .await?,
    })
}

/// A drain while the server prunes: a table of `old` finished jobs past their retention,
/// then `n` no-op jobs drained with `workers` workers → jobs/s, and how many of the old
/// rows the server's maintenance pruned meanwhile.
pub(crate) async fn while_pruning(
    scratch: &Scratch,
    old: usize,
    n: usize,
    workers: usize,
) -> Result<(f64, i64)> {
    scratch.migrate().await?;
    let mut raw = Raw::connect(scratch.url()).await?;
    list::fill_finished_before(&mut raw, old, PRUNABLE).await?;
    let before = raw.count("Succeeded").await?;
    // The drain counts the database's commits: no other connection may be open.
    raw.close().await?;
    // Maintenance rounds from the start of the drain, not after the default 5 s.
    let drain = drain::run_polling(scratch, n, workers, Duration::from_millis(200))
        .await?
        .rate;
    let mut raw = Raw::connect(scratch.url()).await?;
    let after = raw.count("Succeeded").await?;
    raw.close().await?;
    // The drain added `n` succeeded jobs.
    let pruned = before + i64::try_from(n)? - after;
    Ok((drain, pruned))
}
