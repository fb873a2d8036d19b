//! Enqueue rates through the client, one job per call and a thousand per call, each
//! measured together with its plain-sqlx baseline in alternating rounds: a commit waits
//! for the disk, whose latency drifts with whatever else the machine does, and
//! alternating makes both sides see the same disk.

use std::time::Duration;

use anyhow::Result;
use jobs::{Job, Jobs};
use tokio::time::Instant;

use crate::baseline::{self, BULK};
use crate::db::Raw;
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

/// Rows (jobs) per second of both sides.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paired {
    /// Plain sqlx.
    pub(crate) plain: f64,
    /// The `jobs` client.
    pub(crate) jobs: f64,
}

/// Inserts `rows` rows through `plain` and as many jobs through `jobs`, in `rounds`
/// alternating rounds (ABBA order), each side on its own database.
pub(crate) async fn paired(
    plain: &mut Raw,
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
    let (mut plain_time, mut jobs_time) = (Duration::ZERO, Duration::ZERO);
    for round in 0..rounds {
        let units = round * per_round..(round + 1) * per_round;
        for side in [round % 2, 1 - round % 2] {
            if side == 0 {
                plain_time += match insert {
                    Insert::Single => baseline::insert_single(plain, units.clone()).await?,
                    Insert::Bulk => baseline::insert_bulk(plain, units.clone()).await?,
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
                jobs_time += started.elapsed();
            }
        }
    }
    let total = rounds * per_round * unit;
    Ok(Paired {
        plain: rate(total, plain_time),
        jobs: rate(total, jobs_time),
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
