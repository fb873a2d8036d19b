//! The steady stream of the big-table figure (9): the size of the tables after many
//! jobs have passed through a steady backlog, and the share of HOT updates.

use anyhow::{Context, Result};

use super::Bench;
use crate::db::Backend;
use crate::report::{Row, Unit, thousands};
use crate::steady::{self, Reading, megabytes};

/// Workers of the server of the steady stream.
const STEADY_WORKERS: usize = 16;

impl Bench<'_> {
    pub(super) async fn steady(&mut self, backend: Backend) -> Result<()> {
        if backend != Backend::Postgres {
            eprintln!(
                "   (steady stream: PostgreSQL only. Its question is PostgreSQL's: dead \
                 tuples left by updates and deletes until autovacuum, and HOT updates; \
                 SQLite updates in place and reuses freed pages without a vacuum)"
            );
            return Ok(());
        }
        let n = self.sizes.steady_jobs;
        let jobs = thousands(n as f64);
        let scratch = self.scratch(backend).await?;
        eprintln!(
            "   steady stream: {jobs} jobs through about {} waiting, {STEADY_WORKERS} \
             workers, succeeded jobs pruned after {} s",
            steady::WAITING,
            steady::RETENTION.as_secs()
        );
        let result = steady::run(&scratch, n, STEADY_WORKERS, print).await;
        scratch.remove().await?;
        let run = result?;
        let end = run.readings.last().context("no reading")?;
        let along = &run.readings[..run.readings.len() - 1];
        eprintln!(
            "   {:.0} jobs/s, {:.0} waiting on average; {}",
            run.rate, run.waiting, run.autovacuum
        );
        let what = format!(
            "after {jobs} jobs through a steady {} waiting ({STEADY_WORKERS} workers, \
             succeeded jobs pruned after {} s)",
            thousands(steady::WAITING as f64),
            steady::RETENTION.as_secs()
        );
        for table in end
            .tables
            .iter()
            .filter(|table| table.updates > 0 || table.live > 0)
        {
            let name = &table.name;
            let largest = along
                .iter()
                .filter_map(|reading| reading.table(name))
                .map(|along| along.total)
                .max()
                .unwrap_or(0);
            let tenths: Vec<String> = along
                .iter()
                .filter_map(|reading| reading.table(name))
                .map(|along| format!("{:.0}", megabytes(along.total)))
                .collect();
            self.push(
                Row::new(
                    9,
                    format!("{name}: total size {what}"),
                    backend,
                    megabytes(table.total),
                    Unit::Megabytes,
                )
                .note(format!(
                    "heap {:.0} MB, indexes {:.0} MB; {} live, {} dead tuples, {} \
                     autovacuums; largest along the way {:.0} MB; MB at each tenth: {}; {}",
                    megabytes(table.heap),
                    megabytes(table.indexes),
                    thousands(table.live as f64),
                    thousands(table.dead as f64),
                    table.autovacuums,
                    megabytes(largest),
                    tenths.join(", "),
                    run.autovacuum
                )),
            );
            if let Some(share) = table.hot_share() {
                self.push(
                    Row::new(
                        9,
                        format!("{name}: HOT share of updates {what}"),
                        backend,
                        share * 100.0,
                        Unit::Percent,
                    )
                    .note(format!(
                        "n_tup_hot_upd / n_tup_upd = {} / {}",
                        thousands(table.hot as f64),
                        thousands(table.updates as f64)
                    )),
                );
            }
        }
        self.push(
            Row::new(
                9,
                format!("steady stream: jobs/s {what}"),
                backend,
                run.rate,
                Unit::JobsPerSec,
            )
            .note(format!("{:.0} waiting on average", run.waiting)),
        );
        Ok(())
    }
}

/// Prints one reading as it comes.
fn print(reading: &Reading) {
    for table in &reading.tables {
        eprintln!(
            "   {:>10} jobs, {:>6.1} s: {:<10} total {:>7.1} MB (heap {:>7.1}, indexes {:>7.1}), \
             live {:>9}, dead {:>9}, HOT {}, autovacuums {}",
            thousands(reading.passed as f64),
            reading.elapsed.as_secs_f64(),
            table.name,
            megabytes(table.total),
            megabytes(table.heap),
            megabytes(table.indexes),
            thousands(table.live as f64),
            thousands(table.dead as f64),
            table
                .hot_share()
                .map_or("—".to_owned(), |share| format!("{:.1} %", share * 100.0)),
            table.autovacuums
        );
    }
}
