//! The results: one table, printed and written as Markdown and JSON.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::db::Backend;

/// What a value measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Unit {
    /// Jobs per second.
    JobsPerSec,
    /// Rows per second (the plain-sqlx baselines).
    RowsPerSec,
    /// Milliseconds.
    Ms,
    /// Seconds.
    Seconds,
    /// Megabytes (10⁶ bytes).
    Megabytes,
    /// Transactions committed per job.
    CommitsPerJob,
    /// Reads of the store per round of live updates (750 ms).
    ReadsPerRound,
    /// A share, in percent.
    Percent,
}

impl Unit {
    fn format(self, value: f64) -> String {
        match self {
            Unit::JobsPerSec => format!("{} jobs/s", thousands(value)),
            Unit::RowsPerSec => format!("{} rows/s", thousands(value)),
            Unit::Ms => format!("{value:.2} ms"),
            Unit::Seconds => format!("{value:.2} s"),
            Unit::Megabytes => format!("{value:.0} MB"),
            Unit::CommitsPerJob => format!("{value:.3}"),
            Unit::ReadsPerRound => format!("{value:.2} reads/round"),
            Unit::Percent => format!("{value:.1} %"),
        }
    }

    fn is_rate(self) -> bool {
        matches!(self, Unit::JobsPerSec | Unit::RowsPerSec)
    }
}

/// `12345.6` → `12,346`.
pub(crate) fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// What a figure should reach.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Target {
    /// At least this share (0–1) of its baseline.
    ShareOfBaseline {
        /// The share.
        min: f64,
    },
    /// At most this value, in the row's unit.
    AtMost {
        /// The bound.
        max: f64,
    },
}

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    /// The figure's number in the table (1–8).
    pub(crate) number: u8,
    /// What was measured.
    pub(crate) figure: String,
    /// On which database.
    pub(crate) backend: Backend,
    /// The measurement.
    pub(crate) value: f64,
    /// Its unit (the baseline's too).
    pub(crate) unit: Unit,
    /// The practical limit it is compared with, if any.
    pub(crate) baseline: Option<Baseline>,
    /// What it should reach, if anything.
    pub(crate) target: Option<Target>,
    /// How it was measured, briefly.
    pub(crate) note: String,
}

/// A reference value a figure is compared with.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Baseline {
    /// Its value, in the row's unit.
    pub(crate) value: f64,
    /// What it is.
    pub(crate) what: String,
}

impl Row {
    /// A measurement without baseline or target.
    pub(crate) fn new(
        number: u8,
        figure: impl Into<String>,
        backend: Backend,
        value: f64,
        unit: Unit,
    ) -> Self {
        Self {
            number,
            figure: figure.into(),
            backend,
            value,
            unit,
            baseline: None,
            target: None,
            note: String::new(),
        }
    }

    /// Compares it with `value`, described as `what`.
    pub(crate) fn against(mut self, value: f64, what: impl Into<String>) -> Self {
        self.baseline = Some(Baseline {
            value,
            what: what.into(),
        });
        self
    }

    /// Sets what it should reach.
    pub(crate) fn target(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }

    /// Adds how it was measured.
    pub(crate) fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }

    /// Value ÷ baseline.
    pub(crate) fn ratio(&self) -> Option<f64> {
        self.baseline
            .as_ref()
            .map(|baseline| self.value / baseline.value)
    }

    /// Whether it reaches its target.
    pub(crate) fn met(&self) -> Option<bool> {
        match self.target? {
            Target::ShareOfBaseline { min } => self.ratio().map(|ratio| ratio >= min),
            Target::AtMost { max } => Some(self.value <= max),
        }
    }

    fn target_text(&self) -> String {
        match self.target {
            None => "—".to_owned(),
            Some(Target::ShareOfBaseline { min }) => format!("≥ {:.0} % of baseline", min * 100.0),
            Some(Target::AtMost { max }) if self.unit == Unit::CommitsPerJob => {
                format!("well under 1 (≤ {max})")
            }
            Some(Target::AtMost { max }) => format!("≤ {}", self.unit.format(max)),
        }
    }

    fn ratio_text(&self) -> String {
        match self.ratio() {
            None => "—".to_owned(),
            Some(ratio) if self.unit.is_rate() => format!("{:.1} %", ratio * 100.0),
            Some(ratio) => format!("{ratio:.2}×"),
        }
    }
}

/// Where and how the figures were taken.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Setting {
    /// When the run started (UTC).
    pub(crate) date: String,
    /// CPU cores, model, memory, database versions.
    pub(crate) machine: String,
    /// `release` or `debug`.
    pub(crate) profile: &'static str,
    /// Whether the small `--quick` sizes were used.
    pub(crate) quick: bool,
    /// The command that reproduces the table.
    pub(crate) command: String,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    /// Where and how.
    pub(crate) setting: Setting,
    /// The table.
    pub(crate) rows: Vec<Row>,
}

impl Report {
    /// The table as Markdown, with its setting above it.
    pub(crate) fn markdown(&self) -> String {
        let Setting {
            date,
            machine,
            profile,
            quick,
            command,
        } = &self.setting;
        let mut out = String::new();
        let _ = writeln!(out, "Date: {date} · machine: {machine} · build: {profile}");
        if *quick {
            let _ = writeln!(
                out,
                "(`--quick`: small sizes, for checking the harness only)"
            );
        }
        let _ = writeln!(out, "\n```sh\n{command}\n```\n");
        out.push_str(
            "| # | Figure | Backend | Value | Baseline | Ratio | Target | Met? |\n\
             |---|---|---|--:|--:|--:|---|---|\n",
        );
        for row in &self.rows {
            let baseline = match &row.baseline {
                Some(baseline) => {
                    format!("{} ({})", row.unit.format(baseline.value), baseline.what)
                }
                None => "—".to_owned(),
            };
            let met = match row.met() {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "—",
            };
            let figure = if row.note.is_empty() {
                row.figure.clone()
            } else {
                format!("{} ({})", row.figure, row.note)
            };
            let _ = writeln!(
                out,
                "| {} | {figure} | {} | {} | {baseline} | {} | {} | {met} |",
                row.number,
                row.backend.title(),
                row.unit.format(row.value),
                row.ratio_text(),
                row.target_text(),
            );
        }
        out
    }

    /// Writes `<stem>.md` and `<stem>.json` into `dir`; returns their paths.
    pub(crate) fn write(&self, dir: &Path, stem: &str) -> Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir)?;
        let markdown = dir.join(format!("{stem}.md"));
        let json = dir.join(format!("{stem}.json"));
        std::fs::write(&markdown, self.markdown())?;
        let rows: Vec<_> = self
            .rows
            .iter()
            .map(|row| {
                serde_json::json!({
                    "number": row.number,
                    "figure": row.figure,
                    "backend": row.backend,
                    "value": row.value,
                    "unit": row.unit,
                    "baseline": row.baseline,
                    "ratio": row.ratio(),
                    "target": row.target,
                    "met": row.met(),
                    "note": row.note,
                })
            })
            .collect();
        let document = serde_json::json!({ "setting": self.setting, "rows": rows });
        std::fs::write(&json, serde_json::to_string_pretty(&document)? + "\n")?;
        Ok((markdown, json))
    }
}

#[cfg(test)]
mod tests {
    use super::{Backend, Row, Target, Unit, thousands};

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1234.6), "1,235");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }

    #[test]
    fn targets_compare_share_and_bound() {
        let share = Row::new(2, "x", Backend::Sqlite, 80.0, Unit::JobsPerSec)
            .against(100.0, "b")
            .target(Target::ShareOfBaseline { min: 0.8 });
        assert_eq!(share.met(), Some(true));
        let bound =
            Row::new(4, "y", Backend::Postgres, 5.1, Unit::Ms).target(Target::AtMost { max: 5.0 });
        assert_eq!(bound.met(), Some(false));
        assert_eq!(Row::new(1, "z", Backend::Sqlite, 1.0, Unit::Ms).met(), None);
    }
}
