//! One benchmark run: every figure asked for, on every backend asked for, each on a
//! database of its own, gathered into one report.

mod big;
mod inserts;
mod levers;
mod steady;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Result, bail};
use chrono::Utc;
use sqlx::Connection;

use crate::args::{Figure, Measure};
use crate::db::{Backend, Scratch};
use crate::enqueue::{Insert, Paired};
use crate::latency::{self, Latency, Pace};
use crate::report::{Report, Row, Setting, Target, Unit, thousands};
use crate::{drain, list, panics, waiting, work};
use inserts::Table;

/// Concurrent claim loops of the claim + complete baseline. PostgreSQL: enough to keep
/// both cores busy while others wait on a commit; SQLite has one writer: one loop.
fn claimers(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => 8,
    }
}

/// Workers of the panics figure.
const PANIC_WORKERS: usize = 64;

/// How big each figure is.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    insert_single: usize,
    insert_bulk: usize,
    /// Alternating rounds of the insert measurements.
    rounds: usize,
    claim_complete: usize,
    drain: usize,
    drain_workers: [usize; 3],
    latency: Pace,
    waiting: usize,
    list_rows: usize,
    list_repeats: usize,
    panics: usize,
    live_rows: usize,
    live_streams: usize,
    live_jobs: usize,
    scale_rows: usize,
    /// Single enqueues timed on the big table and the empty ones.
    scale_singles: usize,
    /// Jobs through the steady stream of `scale` (PostgreSQL).
    steady_jobs: usize,
}

impl Sizes {
    /// With the big table of `scale` holding `rows` and its steady stream running
    /// `steady` jobs, when given.
    fn scaled(mut self, rows: Option<usize>, steady: Option<usize>) -> Self {
        if let Some(rows) = rows {
            self.scale_rows = rows;
        }
        if let Some(jobs) = steady {
            self.steady_jobs = jobs;
        }
        self
    }

    fn new(quick: bool) -> Self {
        let every = Duration::from_millis(10);
        if quick {
            Self {
                insert_single: 300,
                insert_bulk: 3_000,
                rounds: 3,
                claim_complete: 3_000,
                drain: 2_000,
                drain_workers: [16, 64, 256],
                latency: Pace {
                    every,
                    during: Duration::from_secs(1),
                },
                waiting: 500,
                list_rows: 10_000,
                list_repeats: 5,
                panics: 200,
                live_rows: 10_000,
                live_streams: 20,
                live_jobs: 1_000,
                scale_rows: 20_000,
                scale_singles: 200,
                steady_jobs: 20_000,
            }
        } else {
            Self {
                insert_single: 10_000,
                insert_bulk: 100_000,
                rounds: 10,
                claim_complete: 100_000,
                drain: 100_000,
                drain_workers: [16, 64, 256],
                latency: Pace {
                    every,
                    during: Duration::from_secs(10),
                },
                waiting: 10_000,
                list_rows: 1_000_000,
                list_repeats: 50,
                panics: 10_000,
                live_rows: 1_000_000,
                live_streams: 200,
                live_jobs: 10_000,
                scale_rows: 1_000_000,
                scale_singles: 2_000,
                steady_jobs: 10_000_000,
            }
        }
    }
}

struct Bench<'a> {
    measure: &'a Measure,
    sizes: Sizes,
    rows: Vec<Row>,
    /// Each pair of insert rates is measured once per backend and run, when a figure
    /// first needs it.
    inserts: HashMap<(Backend, Insert), Paired>,
    /// Likewise the claim + complete baseline, on each table.
    claims: HashMap<(Backend, Table), f64>,
}

/// Measures what `measure` asks for, prints the table and writes it.
pub(crate) async fn run(measure: &Measure) -> Result<()> {
    let setting = setting(measure).await;
    let mut bench = Bench {
        measure,
        sizes: Sizes::new(measure.quick).scaled(measure.scale_rows, measure.steady_jobs),
        rows: Vec::new(),
        inserts: HashMap::new(),
        claims: HashMap::new(),
    };
    let mut failures = Vec::new();
    for &figure in &measure.figures {
        for &backend in &measure.backends {
            eprintln!("== {} on {}", figure.name(), backend.title());
            if let Err(error) = bench.figure(figure, backend).await {
                eprintln!("   failed: {error:#}");
                failures.push(format!(
                    "{} on {}: {error:#}",
                    figure.name(),
                    backend.title()
                ));
            }
        }
    }
    let report = Report {
        setting,
        rows: bench.rows,
    };
    let stem = if measure.quick {
        "results-quick"
    } else {
        "results"
    };
    let (markdown, json) = report.write(&measure.out, stem)?;
    println!("\n{}", report.markdown());
    println!("written to {} and {}", markdown.display(), json.display());
    println!("reproduce with: {}", measure.command());
    if !failures.is_empty() {
        bail!(
            "{} figure(s) failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    Ok(())
}

impl Bench<'_> {
    async fn scratch(&self, backend: Backend) -> Result<Scratch> {
        Scratch::create(backend, &self.measure.pg_url).await
    }

    fn push(&mut self, row: Row) {
        eprintln!("   {}: {:.3}", row.figure, row.value);
        self.rows.push(row);
    }

    async fn figure(&mut self, figure: Figure, backend: Backend) -> Result<()> {
        match figure {
            Figure::Baseline => self.baselines(backend).await,
            Figure::Enqueue => self.enqueue(backend).await,
            Figure::Drain => self.drain(backend).await,
            Figure::Latency => self.latency(backend).await,
            Figure::Waiting => self.waiting(backend).await,
            Figure::List => self.list(backend).await,
            Figure::Panics => self.panics(backend).await,
            Figure::Live => self.live(backend).await,
            Figure::Scale => self.scale(backend).await,
            Figure::Steady => self.steady(backend).await,
            Figure::Migrate => self.migrate(backend).await,
            Figure::Levers => self.levers(backend).await,
        }
    }

    async fn drain(&mut self, backend: Backend) -> Result<()> {
        /// Workers of the drain whose queue is limited to as many across the cluster.
        const LIMITED_WORKERS: usize = 64;
        let sizes = self.sizes;
        let share = match backend {
            Backend::Sqlite => 0.5,
            Backend::Postgres => 0.6,
        };
        // The machine's speed drifts from minute to minute (a VM's disk and CPU, by a
        // factor of up to 1.6 here): each drain is compared with the mean of the
        // claim + complete baselines measured right before and right after it.
        let mut before = self.claim_complete(backend, Table::Library).await?;
        let mut minimal_before = self.claim_complete(backend, Table::Minimal).await?;
        let mut unlimited = None;
        for workers in sizes.drain_workers {
            let scratch = self.scratch(backend).await?;
            let drained = drain::run(&scratch, sizes.drain, workers).await?;
            scratch.remove().await?;
            if workers == LIMITED_WORKERS {
                unlimited = Some(drained.rate);
            }
            let after = self.claim_complete(backend, Table::Library).await?;
            let limit = f64::midpoint(before, after);
            before = after;
            let minimal_after = self.claim_complete(backend, Table::Minimal).await?;
            let minimal = f64::midpoint(minimal_before, minimal_after);
            minimal_before = minimal_after;
            let figure = format!(
                "drain {} no-op jobs, {workers} workers",
                thousands(sizes.drain as f64)
            );
            self.push(
                Row::new(3, figure.clone(), backend, drained.rate, Unit::JobsPerSec)
                    .against(limit, "claim + complete, before and after")
                    .target(Target::ShareOfBaseline { min: share }),
            );
            let mut row = Row::new(
                3,
                format!("{figure}, against the {}", inserts::MINIMAL),
                backend,
                drained.rate,
                Unit::JobsPerSec,
            )
            .against(
                minimal,
                format!("claim + complete, {}, before and after", inserts::MINIMAL),
            );
            if backend == Backend::Sqlite {
                row = row.target(Target::ShareOfBaseline { min: 0.5 });
            }
            self.push(row);
            let counted = match backend {
                Backend::Sqlite => "write transactions (commit hook)",
                Backend::Postgres => "pg_stat_database.xact_commit",
            };
            self.push(
                Row::new(
                    3,
                    format!("{figure}: commits per job"),
                    backend,
                    drained.commits_per_job,
                    Unit::CommitsPerJob,
                )
                .target(Target::AtMost { max: 0.1 })
                .note(counted),
            );
        }
        // The same drain with its queue limited across the cluster to as many jobs as
        // there are workers: the cost of a claim that counts the queue's running jobs.
        let scratch = self.scratch(backend).await?;
        let limited =
            drain::run_limited(&scratch, sizes.drain, LIMITED_WORKERS, LIMITED_WORKERS).await?;
        scratch.remove().await?;
        let mut row = Row::new(
            3,
            format!(
                "drain {} no-op jobs, {LIMITED_WORKERS} workers, queue limited to \
                 {LIMITED_WORKERS} across the cluster",
                thousands(sizes.drain as f64)
            ),
            backend,
            limited.rate,
            Unit::JobsPerSec,
        )
        .note("global_queue_limit");
        if let Some(unlimited) = unlimited {
            row = row.against(unlimited, "the same drain without the limit");
        }
        self.push(row);
        if backend == Backend::Postgres {
            // Claims and results committed durably (`postgres_durable_commits`), next
            // to the default asynchronous commits at the same size.
            let workers = sizes.drain_workers[0];
            let mut rates = [0.0; 2];
            for (i, durable) in [false, true, false].into_iter().enumerate() {
                let scratch = self.scratch(backend).await?;
                let rate = drain::run_with(&scratch, sizes.drain, workers, durable, None)
                    .await?
                    .rate;
                scratch.remove().await?;
                eprintln!("   durable commits {durable}: {rate:.0} jobs/s");
                match (i, durable) {
                    (0, _) => rates[0] = rate,
                    (_, true) => rates[1] = rate,
                    _ => rates[0] = f64::midpoint(rates[0], rate),
                }
            }
            self.push(
                Row::new(
                    3,
                    format!(
                        "drain {} no-op jobs, {workers} workers, durable commits",
                        thousands(sizes.drain as f64)
                    ),
                    backend,
                    rates[1],
                    Unit::JobsPerSec,
                )
                .against(rates[0], "asynchronous commits (default), before and after")
                .note("database.postgres_durable_commits = true"),
            );
        }
        Ok(())
    }

    async fn latency(&mut self, backend: Backend) -> Result<()> {
        let pace = self.sizes.latency;
        let scratch = self.scratch(backend).await?;
        let measured = latency::in_process(&scratch, pace).await?;
        scratch.remove().await?;
        self.push_latency(backend, "in-process", measured, 2.0, None);
        if backend == Backend::Postgres {
            let scratch = self.scratch(backend).await?;
            let measured = latency::cross_process(&scratch, pace).await?;
            scratch.remove().await?;
            self.push_latency(backend, "across processes", measured, 5.0, Some(25.0));
        }
        Ok(())
    }

    fn push_latency(
        &mut self,
        backend: Backend,
        place: &str,
        measured: Latency,
        p50_max: f64,
        p99_max: Option<f64>,
    ) {
        let pace = self.sizes.latency;
        let note = format!(
            "1 job every {} ms for {} s; the enqueue call alone: p50 {:.2} ms, p99 {:.2} ms",
            pace.every.as_millis(),
            pace.during.as_secs(),
            measured.enqueue.p50,
            measured.enqueue.p99,
        );
        let spread = measured.start;
        let row = |name: &str, value: f64| {
            Row::new(
                4,
                format!("enqueue-to-start {place}, {name}"),
                backend,
                value,
                Unit::Ms,
            )
        };
        self.push(
            row("p50", spread.p50)
                .target(Target::AtMost { max: p50_max })
                .note(note),
        );
        let p99 = row("p99", spread.p99);
        self.push(match p99_max {
            Some(max) => p99.target(Target::AtMost { max }),
            None => p99,
        });
        self.push(row("max", spread.max));
    }

    async fn panics(&mut self, backend: Backend) -> Result<()> {
        let n = self.sizes.panics;
        let mut rates = [0.0; 2];
        // Off first, then on, then off again: the machine's speed drifts, so capture
        // is compared with the mean of the runs around it.
        for (i, capture) in [false, true, false].into_iter().enumerate() {
            let scratch = self.scratch(backend).await?;
            let rate = panics::run(&scratch, n, PANIC_WORKERS, capture).await?;
            scratch.remove().await?;
            eprintln!("   capture {capture}: {rate:.1} jobs/s");
            if i == 0 {
                rates[0] = rate;
            } else if capture {
                rates[1] = rate;
            } else {
                rates[0] = f64::midpoint(rates[0], rate);
            }
        }
        let figure = format!(
            "{} jobs that panic, {PANIC_WORKERS} workers",
            thousands(n as f64)
        );
        self.push(
            Row::new(
                7,
                format!("{figure}: backtraces captured"),
                backend,
                rates[1],
                Unit::JobsPerSec,
            )
            .against(rates[0], "capture_backtraces(false), before and after")
            .note("the default: force_capture in the panic hook"),
        );
        Ok(())
    }

    async fn waiting(&mut self, backend: Backend) -> Result<()> {
        let jobs = self.sizes.waiting;
        let scratch = self.scratch(backend).await?;
        let waited = waiting::run(&scratch, jobs).await?;
        scratch.remove().await?;
        let figure = format!(
            "{} jobs awaiting a {} s timer, {0} workers",
            thousands(jobs as f64),
            work::MODEL_CALL.as_secs()
        );
        self.push(
            Row::new(
                5,
                format!("{figure}: wall time"),
                backend,
                waited.wall_ms / 1000.0,
                Unit::Seconds,
            )
            .against(work::MODEL_CALL.as_secs_f64(), "the timer")
            .target(Target::AtMost { max: 3.0 }),
        );
        self.push(
            Row::new(
                5,
                format!("{figure}: peak RSS"),
                backend,
                waited.peak_rss_kb as f64 * 1024.0 / 1e6,
                Unit::Megabytes,
            )
            .target(Target::AtMost { max: 300.0 })
            .note("VmHWM of a process of its own"),
        );
        Ok(())
    }

    async fn list(&mut self, backend: Backend) -> Result<()> {
        let sizes = self.sizes;
        let scratch = self.scratch(backend).await?;
        let paged = list::run(&scratch, sizes.list_rows, sizes.list_repeats).await?;
        scratch.remove().await?;
        let note = format!(
            "median of {}; table filled in {:.1} s",
            sizes.list_repeats,
            paged.load.as_secs_f64()
        );
        for (page, value) in [("first page", paged.first_ms), ("deep page", paged.deep_ms)] {
            self.push(
                Row::new(
                    6,
                    format!(
                        "list 50 Succeeded of {} jobs, {page}",
                        thousands(sizes.list_rows as f64)
                    ),
                    backend,
                    value,
                    Unit::Ms,
                )
                .target(Target::AtMost { max: 50.0 })
                .note(note.clone()),
            );
        }
        Ok(())
    }
}

/// Where and how this run measures: date, machine, database versions, build, command.
async fn setting(measure: &Measure) -> Setting {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned());
    let mut machine =
        format!("{cores} cores ({cpu}), {memory_gib:.0} GiB RAM, load {load} at start");
    if measure.backends.contains(&Backend::Sqlite)
        && let Ok(version) = sqlite_version().await
    {
        machine.push_str(&format!(", SQLite {version}"));
    }
    if measure.backends.contains(&Backend::Postgres)
        && let Ok(version) = postgres_version(&measure.pg_url).await
    {
        machine.push_str(&format!(", PostgreSQL {version}"));
    }
    Setting {
        date: Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        machine,
        profile: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        quick: measure.quick,
        command: measure.command(),
    }
}

async fn sqlite_version() -> Result<String> {
    let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:").await?;
    Ok(sqlx::query_scalar("SELECT sqlite_version()")
        .fetch_one(&mut conn)
        .await?)
}

async fn postgres_version(url: &str) -> Result<String> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut conn)
        .await?;
    // Debian adds its package version in parentheses.
    Ok(version.split(' ').next().unwrap_or_default().to_owned())
}
