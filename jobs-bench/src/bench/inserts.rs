//! The baselines (1) and the enqueue figures (2): plain inserts and claims on the
//! library's table and on a minimal one, and the client's enqueues beside them.

use anyhow::Result;

use super::{Bench, claimers};
use crate::baseline::{self, BULK, CLAIM};
use crate::db::{Backend, Raw};
use crate::enqueue::{self, Insert, Paired};
use crate::minimal;
use crate::report::{Row, Target, Unit, thousands};

/// What the minimal-table baseline is called in the rows that compare with it.
pub(super) const MINIMAL: &str = "minimal table";

/// Which table a plain-sqlx baseline runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Table {
    /// The library's own `jobs_job`, migrated (without SQLite's history triggers).
    Library,
    /// The minimal job table of [`minimal`].
    Minimal,
}

/// How the table names and judges one kind of insert.
struct InsertKind {
    rows: usize,
    /// The baseline's figure.
    plain: String,
    /// The client's figure.
    enqueue: String,
    /// The baseline, in the client's row.
    short: &'static str,
    /// The client's target share of the baseline on the library's table.
    share: f64,
    /// Its target share of the minimal table's baseline, on SQLite.
    minimal_share: f64,
}

impl InsertKind {
    fn of(insert: Insert, rows: usize) -> Self {
        match insert {
            Insert::Single => Self {
                rows,
                plain: "insert, 1 row per statement".to_owned(),
                enqueue: "enqueue, 1 job per call".to_owned(),
                short: "1-row insert",
                share: 0.8,
                minimal_share: 0.85,
            },
            Insert::Bulk => Self {
                rows,
                plain: format!("insert, {} rows per statement", thousands(BULK as f64)),
                enqueue: format!("enqueue_many, {} jobs per call", thousands(BULK as f64)),
                short: "1,000-row insert",
                share: 0.6,
                minimal_share: 0.5,
            },
        }
    }
}

impl Bench<'_> {
    fn insert_kind(&self, insert: Insert) -> InsertKind {
        let rows = match insert {
            Insert::Single => self.sizes.insert_single,
            Insert::Bulk => self.sizes.insert_bulk,
        };
        InsertKind::of(insert, rows)
    }

    pub(super) async fn baselines(&mut self, backend: Backend) -> Result<()> {
        let sizes = self.sizes;
        for insert in [Insert::Single, Insert::Bulk] {
            let kind = self.insert_kind(insert);
            let paired = self.inserts(backend, insert).await?;
            let rows = format!("{} rows", thousands(kind.rows as f64));
            self.push(
                Row::new(
                    1,
                    kind.plain.clone(),
                    backend,
                    paired.plain,
                    Unit::RowsPerSec,
                )
                .note(rows.clone()),
            );
            self.push(
                Row::new(
                    1,
                    format!("{}, {MINIMAL}", kind.plain),
                    backend,
                    paired.minimal,
                    Unit::RowsPerSec,
                )
                .note(rows),
            );
        }
        let claim = self.claims(backend, Table::Library).await?;
        let minimal = self.claims(backend, Table::Minimal).await?;
        let figure = format!("claim + complete, {CLAIM} rows per transaction");
        let note = format!(
            "{} rows, {} loop(s)",
            thousands(sizes.claim_complete as f64),
            claimers(backend)
        );
        self.push(Row::new(1, figure.clone(), backend, claim, Unit::RowsPerSec).note(note.clone()));
        self.push(
            Row::new(
                1,
                format!("{figure}, {MINIMAL}"),
                backend,
                minimal,
                Unit::RowsPerSec,
            )
            .note(note),
        );
        Ok(())
    }

    /// Plain inserts (on both tables) and enqueues of one kind, measured together the
    /// first time any of them is needed.
    async fn inserts(&mut self, backend: Backend, insert: Insert) -> Result<Paired> {
        if let Some(&paired) = self.inserts.get(&(backend, insert)) {
            return Ok(paired);
        }
        let plain_db = self.scratch(backend).await?;
        plain_db.migrate_plain().await?;
        let mut plain = Raw::connect(plain_db.url()).await?;
        let minimal_db = self.scratch(backend).await?;
        let mut minimal = Raw::connect(minimal_db.url()).await?;
        minimal::create(&mut minimal).await?;
        let jobs_db = self.scratch(backend).await?;
        let jobs = jobs_db.jobs().await?;
        let rows = self.insert_kind(insert).rows;
        let paired = enqueue::paired(
            &mut plain,
            &mut minimal,
            &jobs,
            insert,
            rows,
            self.sizes.rounds,
        )
        .await?;
        plain.close().await?;
        minimal.close().await?;
        drop(jobs);
        plain_db.remove().await?;
        minimal_db.remove().await?;
        jobs_db.remove().await?;
        self.inserts.insert((backend, insert), paired);
        Ok(paired)
    }

    /// The claim + complete baseline on `table`, measured the first time it is needed.
    async fn claims(&mut self, backend: Backend, table: Table) -> Result<f64> {
        if let Some(&value) = self.claims.get(&(backend, table)) {
            return Ok(value);
        }
        let value = self.claim_complete(backend, table).await?;
        self.claims.insert((backend, table), value);
        Ok(value)
    }

    /// One measurement of the claim + complete baseline on `table`, on a database of
    /// its own.
    pub(super) async fn claim_complete(&self, backend: Backend, table: Table) -> Result<f64> {
        let scratch = self.scratch(backend).await?;
        let (rows, loops) = (self.sizes.claim_complete, claimers(backend));
        let value = match table {
            Table::Library => {
                scratch.migrate_plain().await?;
                baseline::claim_complete(scratch.url(), rows, loops).await?
            }
            Table::Minimal => minimal::claim_complete(scratch.url(), rows, loops).await?,
        };
        scratch.remove().await?;
        Ok(value)
    }

    pub(super) async fn enqueue(&mut self, backend: Backend) -> Result<()> {
        for insert in [Insert::Single, Insert::Bulk] {
            let kind = self.insert_kind(insert);
            let paired = self.inserts(backend, insert).await?;
            let note = format!(
                "{} jobs, rotating with the baselines",
                thousands(kind.rows as f64)
            );
            self.push(
                Row::new(
                    2,
                    kind.enqueue.clone(),
                    backend,
                    paired.jobs,
                    Unit::JobsPerSec,
                )
                .against(paired.plain, kind.short)
                .target(Target::ShareOfBaseline { min: kind.share })
                .note(note.clone()),
            );
            let mut row = Row::new(
                2,
                format!("{}, against the {MINIMAL}", kind.enqueue),
                backend,
                paired.jobs,
                Unit::JobsPerSec,
            )
            .against(paired.minimal, format!("{}, {MINIMAL}", kind.short))
            .note(note);
            if backend == Backend::Sqlite {
                row = row.target(Target::ShareOfBaseline {
                    min: kind.minimal_share,
                });
            }
            self.push(row);
        }
        Ok(())
    }
}
