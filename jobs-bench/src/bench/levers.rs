//! Figure 11, the levers (SQLite): what each part of the library's schema costs the
//! plain-sqlx baselines, between the minimal table and the library's own. The same
//! single insert, 1,000-row insert and claim + complete of 100 run on the minimal table,
//! on the library's table stripped to its claim index (then to it and the indexes of
//! the dashboard's pages by state and by name), without its triggers, as the
//! baselines use it, with each other index of `jobs_job` dropped in turn, and with the
//! history the library writes, then with its counts by state too. Each variant is
//! measured twice, the list forwards then backwards, and the mean given: the machine's
//! speed drifts within a run. The rates are per second of this process's CPU time
//! (SQLite works on its threads), which other work on the machine moves far less than
//! the wall clock; the wall-clock rate is in each row's note.

use std::collections::HashMap;

use anyhow::Result;

use super::Bench;
use crate::baseline::{self, BULK};
use crate::db::{Backend, Raw, Scratch};
use crate::minimal;
use crate::report::{Row, Unit, thousands};
use crate::stats::{Throughput, cpu_time};

/// The index every claim reads: kept in every variant.
const CLAIM_INDEX: &str = "jobs_job_runnable";

/// The indexes without which the dashboard's pages by state and by name read the
/// whole table (figure 9 reads them at 1,000,000 jobs, point 3 of the targets at
/// 10,000,000).
const PAGE_INDEXES: [&str; 2] = ["jobs_job_state", "jobs_job_name"];

/// One form of the table the baselines run on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Variant {
    /// The minimal table (`id`, `state`, `run_at`, `payload`, one partial index).
    Minimal,
    /// The library's table with only its claim index and no triggers.
    ClaimIndexOnly,
    /// [`Variant::ClaimIndexOnly`] with the indexes of the dashboard's pages by state
    /// and by name: the least the library's table can hold and still list a big
    /// table's jobs by state or name in a page's time.
    PageIndexes,
    /// The library's table with every index and no trigger.
    NoTriggers,
    /// The library's table as the baselines use it: without the history triggers.
    Plain,
    /// [`Variant::Plain`] without this index of `jobs_job`.
    Without(String),
    /// The library's table with its history triggers, claimed and completed as the
    /// library does: a job that succeeds writes no history row (its creation, its
    /// attempt's start and its success are said by its row, migrations 32 to 34).
    History,
    /// [`Variant::History`] with the triggers that keep the counts by state: all the
    /// library writes.
    Library,
}

impl Variant {
    fn label(&self) -> String {
        match self {
            Variant::Minimal => "minimal table".to_owned(),
            Variant::ClaimIndexOnly => {
                format!("library table, {CLAIM_INDEX} its only index, no triggers")
            }
            Variant::PageIndexes => format!(
                "library table, {CLAIM_INDEX} and the pages' indexes ({}) only, no triggers",
                PAGE_INDEXES.join(", ")
            ),
            Variant::NoTriggers => "library table, no triggers".to_owned(),
            Variant::Plain => "library table (the baselines' form)".to_owned(),
            Variant::Without(index) => format!("library table without {index}"),
            Variant::History => "library table with its history".to_owned(),
            Variant::Library => "library table with its history and counts by state".to_owned(),
        }
    }

    /// A fresh database of this form on `scratch`.
    async fn prepare(&self, scratch: &Scratch) -> Result<()> {
        if *self == Variant::Minimal {
            let mut raw = Raw::connect(scratch.url()).await?;
            minimal::create(&mut raw).await?;
            return raw.close().await;
        }
        if matches!(self, Variant::History | Variant::Library) {
            scratch.migrate().await?;
            let mut raw = Raw::connect(scratch.url()).await?;
            // The library's inserts name the state a job was created in, so the
            // trigger of the creation's history row never fires for them (migration
            // 32); the baselines' inserts do not name it.
            raw.execute("DROP TRIGGER jobs_job_created").await?;
            if *self == Variant::History {
                raw.drop_counters().await?;
            }
            return raw.close().await;
        }
        scratch.migrate_plain().await?;
        let mut raw = Raw::connect(scratch.url()).await?;
        // What to drop, as `TRIGGER name` or `INDEX name`.
        let triggers = |names: Vec<String>| names.into_iter().map(|name| format!("TRIGGER {name}"));
        let drop: Vec<String> = match self {
            Variant::ClaimIndexOnly | Variant::PageIndexes => {
                let kept = |index: &String| {
                    index == CLAIM_INDEX
                        || (*self == Variant::PageIndexes && PAGE_INDEXES.contains(&index.as_str()))
                };
                let indexes = objects(&mut raw, "index").await?;
                triggers(objects(&mut raw, "trigger").await?)
                    .chain(
                        indexes
                            .into_iter()
                            .filter(|index| !kept(index))
                            .map(|index| format!("INDEX {index}")),
                    )
                    .collect()
            }
            Variant::NoTriggers => triggers(objects(&mut raw, "trigger").await?).collect(),
            Variant::Without(index) => vec![format!("INDEX {index}")],
            Variant::Plain | Variant::Minimal | Variant::History | Variant::Library => Vec::new(),
        };
        for object in drop {
            raw.execute(&format!("DROP {object}")).await?;
        }
        raw.close().await
    }
}

/// The indexes (other than the primary key's) or the triggers of `jobs_job`.
async fn objects(raw: &mut Raw, kind: &str) -> Result<Vec<String>> {
    let Raw::Sqlite(conn) = raw else {
        anyhow::bail!("the levers are measured on SQLite");
    };
    Ok(sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = ?1 AND tbl_name = 'jobs_job' \
             AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name",
    )
    .bind(kind)
    .fetch_all(&mut *conn)
    .await?)
}

/// The three rates of one variant: single insert, bulk insert, claim + complete.
#[derive(Debug, Clone, Copy, Default)]
struct Rates([Throughput; 3]);

const MEASURES: [&str; 3] = [
    "insert, 1 row per statement",
    "insert, 1,000 rows per statement",
    "claim + complete, 100 rows per transaction",
];

impl Bench<'_> {
    pub(super) async fn levers(&mut self, backend: Backend) -> Result<()> {
        if backend == Backend::Postgres {
            eprintln!("   skipped: the minimal table's targets are SQLite's");
            return Ok(());
        }
        let mut variants = vec![
            Variant::Minimal,
            Variant::ClaimIndexOnly,
            Variant::PageIndexes,
            Variant::NoTriggers,
            Variant::Plain,
        ];
        let listing = self.scratch(backend).await?;
        listing.migrate_plain().await?;
        let mut raw = Raw::connect(listing.url()).await?;
        for index in objects(&mut raw, "index").await? {
            if index != CLAIM_INDEX {
                variants.push(Variant::Without(index));
            }
        }
        raw.close().await?;
        listing.remove().await?;
        variants.push(Variant::History);
        variants.push(Variant::Library);

        let mut sums: HashMap<Variant, Rates> = HashMap::new();
        let order: Vec<&Variant> = variants.iter().chain(variants.iter().rev()).collect();
        for variant in order {
            let rates = self.measure_variant(backend, variant).await?;
            eprintln!(
                "   {}: {:.0} / {:.0} / {:.0} rows per CPU-second",
                variant.label(),
                rates.0[0].cpu,
                rates.0[1].cpu,
                rates.0[2].cpu
            );
            let sum = sums.entry(variant.clone()).or_default();
            for (total, value) in sum.0.iter_mut().zip(rates.0) {
                total.wall += value.wall / 2.0;
                total.cpu += value.cpu / 2.0;
            }
        }
        let minimal = sums[&Variant::Minimal];
        let sizes = [
            self.single_rows(),
            self.sizes.insert_bulk,
            self.sizes.claim_complete,
        ];
        for (i, measure) in MEASURES.into_iter().enumerate() {
            for variant in &variants {
                let rates = sums[variant].0[i];
                let mut row = Row::new(
                    11,
                    format!("{measure}: {}", variant.label()),
                    backend,
                    rates.cpu,
                    Unit::RowsPerSec,
                )
                .note(format!(
                    "{} rows, per CPU-second, mean of two passes; {} rows/s by the wall clock",
                    thousands(sizes[i] as f64),
                    thousands(rates.wall),
                ));
                if *variant != Variant::Minimal {
                    row = row.against(minimal.0[i].cpu, "minimal table");
                }
                self.push(row);
            }
        }
        Ok(())
    }

    /// Single inserts of the levers: half the enqueue figure's, since each variant is
    /// measured twice (enough CPU time for the 10 ms ticks it is counted in).
    fn single_rows(&self) -> usize {
        (self.sizes.insert_single / 2).max(100)
    }

    async fn measure_variant(&self, backend: Backend, variant: &Variant) -> Result<Rates> {
        let scratch = self.scratch(backend).await?;
        variant.prepare(&scratch).await?;
        let mut raw = Raw::connect(scratch.url()).await?;
        let single = self.single_rows();
        let batches = self.sizes.insert_bulk.div_ceil(BULK);
        let minimal = *variant == Variant::Minimal;
        let cpu = cpu_time()?;
        let took = if minimal {
            minimal::insert_single(&mut raw, 0..single).await?
        } else {
            baseline::insert_single(&mut raw, 0..single).await?
        };
        let single_rate = Throughput::of(single, took, cpu_time()? - cpu);
        let cpu = cpu_time()?;
        let took = if minimal {
            minimal::insert_bulk(&mut raw, 0..batches).await?
        } else {
            baseline::insert_bulk(&mut raw, 0..batches).await?
        };
        let bulk_rate = Throughput::of(batches * BULK, took, cpu_time()? - cpu);
        raw.close().await?;
        scratch.remove().await?;
        let claims = self.scratch(backend).await?;
        // The minimal baseline creates its table itself.
        if !minimal {
            variant.prepare(&claims).await?;
        }
        let rows = self.sizes.claim_complete;
        let claim = match variant {
            Variant::Minimal => minimal::claim_complete_measured(claims.url(), rows, 1).await?,
            // Both write the history as the library does; only their triggers differ.
            Variant::History | Variant::Library => {
                baseline::claim_complete_with(claims.url(), rows, 1, true).await?
            }
            _ => baseline::claim_complete_with(claims.url(), rows, 1, false).await?,
        };
        claims.remove().await?;
        Ok(Rates([single_rate, bulk_rate, claim]))
    }
}
