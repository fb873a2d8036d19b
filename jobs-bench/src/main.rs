//! `jobs-bench`: throughput, latency and concurrency figures of `jobs` on SQLite and
//! PostgreSQL, each next to what plain sqlx achieves on the same kind of database in the
//! same run, so the figures mean something on any machine.
//!
//! ```sh
//! cargo run --release -p jobs-bench -- all            # the full table, several minutes
//! cargo run --release -p jobs-bench -- all --quick    # small sizes: checks the harness
//! cargo run --release -p jobs-bench -- --help         # figures and options
//! cargo run --release -p jobs-bench -- soak --minutes 30  # faults: overlaps, lost, …
//! ```
//!
//! Every measurement gets a database of its own (a SQLite file in a temporary directory,
//! or a PostgreSQL database created on `--pg-url` and dropped after). The table is
//! printed and written to `target/bench/results.{md,json}`.

mod args;
mod baseline;
mod bench;
mod db;
mod drain;
mod enqueue;
mod fault;
mod latency;
mod list;
mod live;
mod migrating;
mod minimal;
mod panics;
mod report;
mod scale;
mod soak;
mod stats;
mod steady;
mod waiting;
mod work;

use args::Command;

fn main() -> anyhow::Result<()> {
    // Before any figure starts a server, so that the library's panic hook (installed by
    // the first server) wraps this one; see `panics::quiet`.
    panics::quiet();
    // The library's warnings (a lease not renewed, a prune that failed…) on stderr, so
    // that a figure that stalls says why; `RUST_LOG` chooses others.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let command = args::parse(std::env::args().skip(1))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match command {
            Command::Help => {
                print!("{}", args::USAGE);
                Ok(())
            }
            Command::Measure(measure) => bench::run(&measure).await,
            Command::LatencyWorker { url } => latency::worker(&url).await,
            Command::Waiting { url, jobs } => waiting::child(&url, jobs).await,
            Command::Soak(soak) => soak::run(&soak).await,
            Command::SoakNode { url, log } => soak::node(&url, &log).await,
        }
    })
}
