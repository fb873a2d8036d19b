//! The figures on big tables: the drain beside open dashboards (8), on a table of
//! finished jobs, with single enqueues, the dashboard's reads and a prune beside it
//! (9), and while another node migrates it (10).

use anyhow::Result;

use super::Bench;
use crate::db::{Backend, Scratch};
use crate::migrating::{self, Build};
use crate::report::{Row, Target, Unit, thousands};
use crate::{live, scale};

/// Workers of the drains of the live-updates figure.
const LIVE_WORKERS: usize = 16;

/// Workers of the drains of the big-table figure.
const SCALE_WORKERS: usize = 16;

/// Rounds of the big table's single enqueues, each taking turns with an empty table.
const ENQUEUE_ROUNDS: usize = 10;

/// Workers of the drain the migration figure stalls.
const MIGRATE_WORKERS: usize = 16;

impl Bench<'_> {
    pub(super) async fn migrate(&mut self, backend: Backend) -> Result<()> {
        if backend != Backend::Postgres {
            eprintln!("   (PostgreSQL only: SQLite builds an index in its one write transaction)");
            return Ok(());
        }
        let sizes = self.sizes;
        let mut stalls = Vec::new();
        for build in [Build::Library, Build::InTransaction] {
            let scratch = self.scratch(backend).await?;
            let stall = migrating::stall_while_migrating(
                &scratch,
                sizes.scale_rows,
                sizes.drain * 2,
                MIGRATE_WORKERS,
                build,
            )
            .await?;
            scratch.remove().await?;
            eprintln!(
                "   {build:?}: migration {:.2} s, longest stall of the drain {:.0} ms",
                stall.migration.as_secs_f64(),
                stall.longest_gap.as_secs_f64() * 1000.0
            );
            stalls.push(stall);
        }
        let (library, before) = (stalls[0], stalls[1]);
        self.push(
            Row::new(
                10,
                format!(
                    "longest stall of a {MIGRATE_WORKERS}-worker drain while another node \
                     migrates a table of {} finished jobs (index built CONCURRENTLY, {:.1} s)",
                    thousands(sizes.scale_rows as f64),
                    library.migration.as_secs_f64()
                ),
                backend,
                library.longest_gap.as_secs_f64() * 1000.0,
                Unit::Ms,
            )
            .against(
                before.longest_gap.as_secs_f64() * 1000.0,
                "the same index built inside the migration's transaction",
            )
            .target(Target::AtMost { max: 1000.0 }),
        );
        Ok(())
    }

    pub(super) async fn scale(&mut self, backend: Backend) -> Result<()> {
        let sizes = self.sizes;
        let rows = thousands(sizes.scale_rows as f64);
        // Empty, big, empty, big again, empty: the machine's speed drifts by a third
        // within minutes, so the big table's two drains are compared with the mean of
        // the three around them. The first empty table stays until the big one is
        // measured: the single enqueues take turns on both.
        let measure = async |scratch: &Scratch, old: usize| -> Result<scale::Measured> {
            let measured =
                scale::on_big_table(scratch, old, sizes.drain, SCALE_WORKERS, sizes.list_repeats)
                    .await?;
            eprintln!("   {old} old jobs: drain {:.0} jobs/s", measured.drain);
            Ok(measured)
        };
        let drain_empty = async || -> Result<f64> {
            let scratch = self.scratch(backend).await?;
            let drain = measure(&scratch, 0).await?.drain;
            scratch.remove().await?;
            Ok(drain)
        };
        let first = self.scratch(backend).await?;
        let before = measure(&first, 0).await?;
        let table = self.scratch(backend).await?;
        let big = measure(&table, sizes.scale_rows).await?;
        let [enqueue_big, enqueue_empty] =
            scale::enqueues_side_by_side([&table, &first], sizes.scale_singles, ENQUEUE_ROUNDS)
                .await?;
        eprintln!(
            "   enqueue, 1 job per call: {enqueue_big:.0} jobs/s on {} old jobs, \
             {enqueue_empty:.0} on an empty table, in alternating rounds",
            sizes.scale_rows
        );
        first.remove().await?;
        let between = drain_empty().await?;
        let again = scale::again_on_big_table(&table, sizes.drain, SCALE_WORKERS).await?;
        eprintln!(
            "   {} old jobs, again: drain {again:.0} jobs/s",
            sizes.scale_rows
        );
        table.remove().await?;
        let after = drain_empty().await?;
        // The server prunes a table of finished jobs past their retention while it
        // drains a backlog: twice, taking turns with empty tables likewise (a single
        // drain beside the prune measured 47–122 % of the empty tables' mean from run
        // to run, where the empty tables' own drains spread from 20,000 to 37,000 jobs/s
        // within one run).
        let drain_pruning = async || -> Result<(f64, i64)> {
            let scratch = self.scratch(backend).await?;
            let measured =
                scale::while_pruning(&scratch, sizes.scale_rows, sizes.drain, SCALE_WORKERS)
                    .await?;
            scratch.remove().await?;
            eprintln!(
                "   {} old jobs past retention: drain {:.0} jobs/s while {} were pruned",
                sizes.scale_rows, measured.0, measured.1
            );
            Ok(measured)
        };
        let (pruning, pruned) = drain_pruning().await?;
        let after_pruning = drain_empty().await?;
        let (pruning_again, pruned_again) = drain_pruning().await?;
        let last = drain_empty().await?;
        let empty = [before.drain, between, after];
        let empty_drain = empty.iter().sum::<f64>() / empty.len() as f64;
        let big_drain = (big.drain + again) / 2.0;
        self.push(
            Row::new(
                9,
                format!(
                    "drain {} no-op jobs, {SCALE_WORKERS} workers, on {rows} finished jobs \
                     analyzed before the backlog",
                    thousands(sizes.drain as f64),
                ),
                backend,
                big_drain,
                Unit::JobsPerSec,
            )
            .against(
                empty_drain,
                "the same drain on an empty table, taking turns",
            )
            .target(Target::ShareOfBaseline { min: 0.9 })
            .note(format!(
                "mean of two drains on the big table, {:.0} and {again:.0} jobs/s, against \
                 three on empty tables before, between and after them, {:.0}, {between:.0} \
                 and {after:.0}",
                big.drain, before.drain
            )),
        );
        self.push(
            Row::new(
                9,
                format!(
                    "enqueue, 1 job per call ({} jobs), on {rows} finished jobs",
                    thousands(sizes.scale_singles as f64)
                ),
                backend,
                enqueue_big,
                Unit::JobsPerSec,
            )
            .against(
                enqueue_empty,
                "the same on an empty table, in alternating rounds",
            )
            .target(Target::ShareOfBaseline { min: 0.9 }),
        );
        if let Some(reads) = big.reads {
            for (what, ms) in [
                ("newest 50 succeeded jobs", reads.list),
                (
                    "newest 50 jobs of one name (a quarter of the rows)",
                    reads.by_name,
                ),
                (
                    "newest 50 jobs with one label (one row in 100)",
                    reads.by_label,
                ),
                ("counts by state", reads.counts),
            ] {
                self.push(
                    Row::new(
                        9,
                        format!("dashboard read on {rows} jobs: {what}"),
                        backend,
                        ms,
                        Unit::Ms,
                    )
                    .target(Target::AtMost { max: 50.0 })
                    .note(format!("median of {}", sizes.list_repeats)),
                );
            }
        }
        let around = [after, after_pruning, last];
        self.push(
            Row::new(
                9,
                format!(
                    "drain {} no-op jobs, {SCALE_WORKERS} workers, while pruning {rows} \
                     finished jobs past retention",
                    thousands(sizes.drain as f64),
                ),
                backend,
                (pruning + pruning_again) / 2.0,
                Unit::JobsPerSec,
            )
            .against(
                around.iter().sum::<f64>() / around.len() as f64,
                "the same drain on an empty table, taking turns",
            )
            .target(Target::ShareOfBaseline { min: 0.8 })
            .note(format!(
                "mean of two drains beside the prune, {pruning:.0} and {pruning_again:.0} \
                 jobs/s ({} and {} rows pruned meanwhile, in batches of 1,000), against \
                 three on empty tables before, between and after them, {after:.0}, \
                 {after_pruning:.0} and {last:.0}",
                thousands(pruned as f64),
                thousands(pruned_again as f64),
            )),
        );
        Ok(())
    }

    pub(super) async fn live(&mut self, backend: Backend) -> Result<()> {
        let sizes = self.sizes;
        let scratch = self.scratch(backend).await?;
        let measured = live::run(
            &scratch,
            sizes.live_rows,
            sizes.live_streams,
            sizes.live_jobs,
            LIVE_WORKERS,
        )
        .await?;
        scratch.remove().await?;
        let (rows, streams) = (
            thousands(sizes.live_rows as f64),
            thousands(sizes.live_streams as f64),
        );
        self.push(
            Row::new(
                8,
                format!(
                    "drain {} no-op jobs, {LIVE_WORKERS} workers, {streams} live-update \
                     streams open on {rows} jobs",
                    thousands(sizes.live_jobs as f64)
                ),
                backend,
                measured.with,
                Unit::JobsPerSec,
            )
            .against(
                measured.without,
                "the same drain without streams, before and after",
            )
            .target(Target::ShareOfBaseline { min: 0.8 })
            .note(format!(
                "table filled in {:.0} s",
                measured.load.as_secs_f64()
            )),
        );
        self.push(
            Row::new(
                8,
                format!("{streams} live-update streams: store reads per round"),
                backend,
                measured.reads_per_round,
                Unit::ReadsPerRound,
            )
            .target(Target::AtMost {
                max: live::TOPICS as f64,
            })
            .note(format!(
                "{} topics watched by every stream; one read per topic per round at most",
                live::TOPICS
            )),
        );
        Ok(())
    }
}
