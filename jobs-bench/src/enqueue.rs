//! Enqueue rates through the client, one job per call and a thousand per call, each
//! measured together with its plain-sqlx baselines (on the library's table and on a
//! minimal one) in rotating rounds: a commit waits for the disk, whose latency drifts
//! with whatever else the machine does, and rotating makes every side see the same
//! disk.

use std::time::Duration;

use anyhow::Result;
use jobs::{Job, Jobs};
use tokio::time::Instant;

use crate::baseline::{self, BULK};
use crate::db::Raw;
use crate::minimal;
use crate::stats::rate;
use crate::work::Noop;

/// How rows go in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Insert {
    /// One row per statement; one job per `enqueue` call.
    Single,
    /// [`BULK`] rows per statement; [`BULK`] jobs per `enqueue_many` call.
    Bulk,
}

/// Rows (jobs) per second of every side.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paired {
    /// Plain sqlx on the library's table.
    pub(crate) plain: f64,
    /// Plain sqlx on the minimal table.
    pub(crate) minimal: f64,
    /// The `jobs` client.
    pub(crate) jobs: f64,
}

/// Inserts `rows` rows through `plain` (the library's table), as many through `minimal`
/// (the minimal table) and as many jobs through `jobs`, in `rounds` rounds that rotate
/// the order of the sides, each side on its own database.
pub(crate) async fn paired(
    plain: &mut Raw,
    minimal: &mut Raw,
    jobs: &Jobs,
    insert: Insert,
    rows: usize,
    rounds: usize,
) -> Result<Paired> {
    let unit = match insert {
        Insert::Single => 1,
        Insert::Bulk => BULK,
    };
    let per_round = (rows / unit / rounds).max(1);
    let mut times = [Duration::ZERO; 3];
    for round in 0..rounds {
        let units = round * per_round..(round + 1) * per_round;
        for side in (0..3).map(|k| (round + k) % 3) {
            if side == 0 {
                times[0] += match insert {
                    Insert::Single => baseline::insert_single(plain, units.clone()).await?,
                    Insert::Bulk => baseline::insert_bulk(plain, units.clone()).await?,
                };
            } else if side == 1 {
                times[1] += match insert {
                    Insert::Single => minimal::insert_single(minimal, units.clone()).await?,
                    Insert::Bulk => minimal::insert_bulk(minimal, units.clone()).await?,
                };
            } else {
                let started = Instant::now();
                for unit_index in units.clone() {
                    match insert {
                        Insert::Single => {
                            jobs.enqueue(noop(unit_index)).await?;
                        }
                        Insert::Bulk => {
                            let first = unit_index * BULK;
                            jobs.enqueue_many((first..first + BULK).map(noop)).await?;
                        }
                    }
                }
                times[2] += started.elapsed();
            }
        }
    }
    let total = rounds * per_round * unit;
    Ok(Paired {
        plain: rate(total, times[0]),
        minimal: rate(total, times[1]),
        jobs: rate(total, times[2]),
    })
}

/// Enqueues `make(0)` … `make(n - 1)` as fast as the client allows, for figures that
/// start from a backlog.
pub(crate) async fn backlog<J: Job>(jobs: &Jobs, n: usize, make: impl Fn(u32) -> J) -> Result<()> {
    for start in (0..n).step_by(BULK) {
        jobs.enqueue_many((start..n.min(start + BULK)).map(|i| make(index(i))))
            .await?;
    }
    Ok(())
}

fn noop(n: usize) -> Noop {
    Noop { n: index(n) }
}

fn index(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
