//! The command line.

use std::path::{Path, PathBuf};

use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::db::{Backend, redacted};
use crate::soak::Soak;

/// The hidden first argument of a worker process for the cross-process latency figure.
pub(crate) const LATENCY_WORKER: &str = "__latency-worker";
/// The hidden first argument of the process that measures the waiting-jobs figure.
pub(crate) const WAITING: &str = "__waiting";

/// The hidden first argument of a soak worker node.
pub(crate) use crate::soak::SOAK_NODE;

/// Where PostgreSQL databases are created when neither `--pg-url` nor
/// `JOBS_BENCH_PG_URL` says otherwise.
const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The usage text.
pub(crate) const USAGE: &str = "\
jobs-bench: throughput, latency and concurrency figures of `jobs`, each next to what
plain sqlx does on the same database in the same run.

usage: cargo run --release -p jobs-bench -- <figure>... [options]

figures (run in this order, on each backend):
  baseline   plain sqlx: single-row insert, 1,000-row insert, claim + complete 100/tx,
             on the library's table and on a minimal one (id, state, run_at, payload)
  enqueue    jobs.enqueue(job) one at a time, and enqueue_many of 1,000
  drain      100,000 enqueued no-op jobs at 16, 64 and 256 workers: jobs/s, commits/job;
             at 64 workers with the queue limited to 64 across the cluster
  latency    one job every 10 ms for 10 s on an idle server: enqueue-to-start
             p50/p99/max, in-process, and across processes on PostgreSQL
  waiting    10,000 jobs awaiting a 1 s timer with 10,000 workers: wall time, peak RSS
  list       the dashboard's page of 50 jobs on a 1,000,000-job table
  panics     10,000 jobs that panic (no retries) at 64 workers, each panic's backtrace
             captured and not (capture_backtraces): jobs/s
  scale      100,000 no-op jobs drained at 16 workers on empty tables and, taking
             turns with them, twice on one holding 1,000,000 finished jobs, analyzed
             before each backlog arrived; 2,000 single enqueues on the big one in
             rounds taking turns with an empty one; the dashboard's reads (a page by
             state, by name and by label, the counts) on the big one; and the drain
             while the server prunes 1,000,000 finished jobs past their retention,
             twice, taking turns with empty tables; on PostgreSQL, the steady stream
             (see `steady`)
  steady     PostgreSQL (also part of `scale`): a server drains while a producer
             keeps about 1,000 jobs waiting, until 10,000,000 have passed through,
             succeeded jobs pruned after 10 s: size, live and dead tuples of the
             tables written per job, and the share of HOT updates, at every tenth
  migrate    PostgreSQL: a node of a new release builds the newest index of the job
             table on 1,000,000 finished jobs while another drains a backlog: the
             drain's longest stall, with the index built CONCURRENTLY (the library)
             and inside a transaction (as before)
  live       200 live-update streams (dashboard tabs) open on a 1,000,000-job table:
             a drain of 10,000 no-op jobs with and without them, and the store reads
             for live updates per 750 ms round
  levers     SQLite: the baselines' single insert, 1,000-row insert and claim +
             complete on the minimal table, on the library's table stripped to its
             claim index (then with the indexes of the dashboard's pages by state
             and by name), without triggers, without each other index in turn, and
             with the history the library writes: what each part costs
  all        every figure

soak (not a figure: a reliability run, PostgreSQL only):
  soak       mixed jobs (short, long, failing, panicking, timing out, recurring,
             retries = 0) on worker processes behind fault-injecting proxies, with
             random faults (partitions, resets, SIGKILL and restart); prints
             executions, overlaps, lost, stuck and falsely failed jobs, and fails
             unless the last four are 0
             options: --minutes <n> (default 5), --quick (1 minute), --seed <n>,
             --nodes <n> (default 3), --pg-url, --out (the nodes' logs)

options:
  --quick               small sizes: checks the harness in seconds, measures nothing
  --backend <b>         sqlite, postgres or both (default: both)
  --pg-url <url>        PostgreSQL server to create scratch databases on (default:
                        $JOBS_BENCH_PG_URL, else postgres://postgres@127.0.0.1:5432/postgres)
  --out <dir>           where results.md and results.json go (default: target/bench)
  --scale-rows <n>      the finished jobs of scale's big table (default 1,000,000;
                        10_000_000 for the 10-million-row form)
  --steady-jobs <n>     the jobs through the steady stream (default 10,000,000;
                        20,000 with --quick)
  -h, --help            this text
";

/// One figure of the benchmark, in the order of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Figure {
    /// 1. Plain sqlx limits.
    Baseline,
    /// 2. Enqueue rates.
    Enqueue,
    /// 3. Draining a backlog.
    Drain,
    /// 4. Enqueue-to-start latency.
    Latency,
    /// 5. Many jobs waiting at once.
    Waiting,
    /// 6. The dashboard's list on a big table.
    List,
    /// 7. Jobs that panic, with and without backtraces.
    Panics,
    /// 8. Open dashboards on a big table.
    Live,
    /// 9. Speed on a big table.
    Scale,
    /// 9. Table sizes after a steady stream of jobs (part of `scale`).
    Steady,
    /// 10. A migration on a big table while another node drains.
    Migrate,
    /// 11. What each part of the library's schema costs the baselines (SQLite).
    Levers,
}

impl Figure {
    const ALL: [Figure; 12] = [
        Figure::Baseline,
        Figure::Enqueue,
        Figure::Drain,
        Figure::Latency,
        Figure::Waiting,
        Figure::List,
        Figure::Panics,
        Figure::Live,
        Figure::Scale,
        Figure::Steady,
        Figure::Migrate,
        Figure::Levers,
    ];

    fn parse(name: &str) -> Option<Vec<Self>> {
        Some(match name {
            "all" => Self::ALL.to_vec(),
            "baseline" => vec![Figure::Baseline],
            "enqueue" => vec![Figure::Enqueue],
            "drain" => vec![Figure::Drain],
            "latency" => vec![Figure::Latency],
            "waiting" => vec![Figure::Waiting],
            "list" => vec![Figure::List],
            "panics" => vec![Figure::Panics],
            "live" => vec![Figure::Live],
            "scale" => vec![Figure::Scale, Figure::Steady],
            "steady" => vec![Figure::Steady],
            "migrate" => vec![Figure::Migrate],
            "levers" => vec![Figure::Levers],
            _ => return None,
        })
    }

    /// Its name on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Figure::Baseline => "baseline",
            Figure::Enqueue => "enqueue",
            Figure::Drain => "drain",
            Figure::Latency => "latency",
            Figure::Waiting => "waiting",
            Figure::List => "list",
            Figure::Panics => "panics",
            Figure::Live => "live",
            Figure::Scale => "scale",
            Figure::Steady => "steady",
            Figure::Migrate => "migrate",
            Figure::Levers => "levers",
        }
    }
}

/// What this process is to do.
#[derive(Debug)]
pub(crate) enum Command {
    /// Print the usage text.
    Help,
    /// Measure these figures and write the table.
    Measure(Measure),
    /// Run a server for the cross-process latency figure on this database.
    LatencyWorker {
        /// The database.
        url: String,
    },
    /// Run the soak.
    Soak(Soak),
    /// Run a soak worker node on this database, recording executions in this log.
    SoakNode {
        /// The database (through the node's proxy).
        url: String,
        /// The execution log.
        log: PathBuf,
    },
    /// Measure the waiting-jobs figure with this many jobs on this database.
    Waiting {
        /// The database.
        url: String,
        /// How many jobs.
        jobs: usize,
    },
}

/// A benchmark run as asked for.
#[derive(Debug, Clone)]
pub(crate) struct Measure {
    /// Which figures, in table order.
    pub(crate) figures: Vec<Figure>,
    /// Small sizes.
    pub(crate) quick: bool,
    /// On which databases.
    pub(crate) backends: Vec<Backend>,
    /// Where PostgreSQL scratch databases are created.
    pub(crate) pg_url: String,
    /// The finished jobs of the big table of `scale`, when not the default.
    pub(crate) scale_rows: Option<usize>,
    /// The jobs through the steady stream, when not the default.
    pub(crate) steady_jobs: Option<usize>,
    /// Where the results go.
    pub(crate) out: PathBuf,
}

impl Measure {
    /// The command line that reproduces this run.
    pub(crate) fn command(&self) -> String {
        let profile = if cfg!(debug_assertions) {
            ""
        } else {
            " --release"
        };
        let figures = if self.figures == Figure::ALL {
            "all".to_owned()
        } else if self.figures == [Figure::Scale, Figure::Steady] {
            "scale".to_owned()
        } else {
            self.figures
                .iter()
                .map(|figure| figure.name())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let backend = match self.backends.as_slice() {
            [only] => only.key(),
            _ => "both",
        };
        let mut command =
            format!("cargo run{profile} -p jobs-bench -- {figures} --backend {backend}");
        if self.quick {
            command.push_str(" --quick");
        }
        if let Some(rows) = self.scale_rows {
            command.push_str(&format!(" --scale-rows {rows}"));
        }
        if let Some(jobs) = self.steady_jobs {
            command.push_str(&format!(" --steady-jobs {jobs}"));
        }
        if self.backends.contains(&Backend::Postgres) {
            command.push_str(&format!(" --pg-url {}", redacted(&self.pg_url)));
        }
        command
    }
}

/// Reads the command line (without the program name).
pub(crate) fn parse(mut args: impl Iterator<Item = String>) -> Result<Command> {
    let mut figures = Vec::new();
    let mut quick = false;
    let mut backends = vec![Backend::Sqlite, Backend::Postgres];
    let mut pg_url = std::env::var("JOBS_BENCH_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.into());
    let mut out = default_out();
    let mut scale_rows = None;
    let mut steady_jobs = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            LATENCY_WORKER => {
                let url = value("the worker role")?;
                return Ok(Command::LatencyWorker { url });
            }
            WAITING => {
                let url = value("the waiting role")?;
                let jobs = value("the waiting role")?.parse()?;
                return Ok(Command::Waiting { url, jobs });
            }
            SOAK_NODE => {
                let url = value("the soak node role")?;
                let log = PathBuf::from(value("the soak node role")?);
                return Ok(Command::SoakNode { url, log });
            }
            "soak" if figures.is_empty() => return parse_soak(args, pg_url, out),
            "--quick" => quick = true,
            "--backend" => {
                backends = match value("--backend")?.as_str() {
                    "sqlite" => vec![Backend::Sqlite],
                    "postgres" => vec![Backend::Postgres],
                    "both" => vec![Backend::Sqlite, Backend::Postgres],
                    other => bail!("unknown backend `{other}`: sqlite, postgres or both"),
                }
            }
            "--pg-url" => pg_url = value("--pg-url")?,
            "--out" => out = PathBuf::from(value("--out")?),
            "--scale-rows" => {
                let rows = value("--scale-rows")?;
                scale_rows =
                    Some(rows.replace('_', "").parse().with_context(|| {
                        format!("--scale-rows: `{rows}` is not a number of rows")
                    })?);
            }
            "--steady-jobs" => {
                let jobs = value("--steady-jobs")?;
                steady_jobs =
                    Some(jobs.replace('_', "").parse().with_context(|| {
                        format!("--steady-jobs: `{jobs}` is not a number of jobs")
                    })?);
            }
            name => match Figure::parse(name) {
                Some(named) => figures.extend(named),
                None => bail!("unknown figure or option `{name}`\n\n{USAGE}"),
            },
        }
    }
    if figures.is_empty() {
        bail!("name the figures to measure, or `all`\n\n{USAGE}");
    }
    figures.sort();
    figures.dedup();
    Ok(Command::Measure(Measure {
        figures,
        quick,
        backends,
        pg_url,
        scale_rows,
        steady_jobs,
        out,
    }))
}

/// Reads the options of `soak`.
fn parse_soak(
    mut args: impl Iterator<Item = String>,
    mut pg_url: String,
    mut out: PathBuf,
) -> Result<Command> {
    let mut minutes = 5.0_f64;
    let mut seed = None;
    let mut nodes = 3;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--minutes" => minutes = value("--minutes")?.parse()?,
            "--quick" => minutes = 1.0,
            "--seed" => seed = Some(value("--seed")?.parse()?),
            "--nodes" => nodes = value("--nodes")?.parse()?,
            "--pg-url" => pg_url = value("--pg-url")?,
            "--out" => out = PathBuf::from(value("--out")?),
            other => bail!("unknown soak option `{other}`\n\n{USAGE}"),
        }
    }
    if !(minutes > 0.0 && minutes.is_finite()) || nodes == 0 {
        bail!("--minutes and --nodes must be positive");
    }
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs())
    });
    Ok(Command::Soak(Soak {
        duration: Duration::from_secs_f64(minutes * 60.0),
        seed,
        nodes,
        pg_url,
        out,
    }))
}

/// `target/bench` of the workspace (or of `CARGO_TARGET_DIR`).
fn default_out() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from);
    target.join("bench")
}

#[cfg(test)]
mod tests {
    use super::{Command, Figure, parse};
    use crate::db::Backend;

    fn measure(line: &str) -> super::Measure {
        match parse(line.split_whitespace().map(str::to_owned)).unwrap() {
            Command::Measure(measure) => measure,
            other => panic!("not a measurement: {other:?}"),
        }
    }

    #[test]
    fn all_means_every_figure_in_table_order() {
        let run = measure("all --quick --backend sqlite");
        assert_eq!(run.figures, Figure::ALL);
        assert!(run.quick);
        assert_eq!(run.backends, [Backend::Sqlite]);
        assert!(run.command().contains("-- all --backend sqlite --quick"));
    }

    #[test]
    fn figures_are_sorted_and_unique() {
        let run = measure("list drain list");
        assert_eq!(run.figures, [Figure::Drain, Figure::List]);
    }

    #[test]
    fn soak_reads_its_options() {
        let line = "soak --minutes 30 --seed 7 --nodes 4";
        match parse(line.split_whitespace().map(str::to_owned)).unwrap() {
            Command::Soak(soak) => {
                assert_eq!(soak.duration.as_secs(), 1800);
                assert_eq!((soak.seed, soak.nodes), (7, 4));
                assert!(
                    soak.command()
                        .contains("soak --minutes 30 --seed 7 --nodes 4")
                );
            }
            other => panic!("not a soak: {other:?}"),
        }
        match parse(["soak".to_owned(), "--quick".to_owned()].into_iter()).unwrap() {
            Command::Soak(soak) => assert_eq!(soak.duration.as_secs(), 60),
            other => panic!("not a soak: {other:?}"),
        }
    }

    #[test]
    fn scale_includes_the_steady_stream() {
        let run = measure("scale --backend postgres --steady-jobs 1_000_000");
        assert_eq!(run.figures, [Figure::Scale, Figure::Steady]);
        assert_eq!(run.steady_jobs, Some(1_000_000));
        assert!(
            run.command()
                .contains("-- scale --backend postgres --steady-jobs 1000000")
        );
        assert_eq!(measure("steady").figures, [Figure::Steady]);
    }

    #[test]
    fn the_levers_are_a_figure_of_their_own_and_of_all() {
        let run = measure("levers --backend sqlite");
        assert_eq!(run.figures, [Figure::Levers]);
        assert!(run.command().contains("-- levers --backend sqlite"));
        assert_eq!(measure("all").figures.last(), Some(&Figure::Levers));
    }

    #[test]
    fn nonsense_is_refused() {
        assert!(parse(["drian".to_owned()].into_iter()).is_err());
        assert!(parse(std::iter::empty()).is_err());
    }
}
