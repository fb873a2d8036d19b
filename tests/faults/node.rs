//! The processes of the fault tests: worker nodes (a server on the database it is given,
//! recording executions in the log it is given) and a SQLite lock holder. The test
//! binary runs itself again with `node::child` (or `node::current_thread::child`, a
//! node whose whole runtime is one thread) selected.

use std::time::Duration;

use jobs::{JobServer, Jobs, SkewedClock};

use crate::POLL_INTERVAL;
use crate::support::fault::proxy::EXECUTION_LOG;
use crate::support::fault::{ExecutionLog, hold_sqlite_write_lock};
use crate::support::process::{self, Child};

const WORKERS: &str = "JOBS_FAULT_WORKERS";
const SERVER_TIMEOUT_MS: &str = "JOBS_FAULT_SERVER_TIMEOUT_MS";
const CLOCK_OFFSET_S: &str = "JOBS_FAULT_CLOCK_OFFSET_S";
const LOCK_MS: &str = "JOBS_FAULT_LOCK_MS";

/// How a worker node runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node {
    pub(crate) workers: usize,
    pub(crate) server_timeout: Duration,
    /// Seconds its clock is ahead of the host's (negative: behind).
    pub(crate) clock_offset: i64,
    /// Its runtime is one thread, shared by the jobs and the server's loops.
    pub(crate) current_thread: bool,
}

impl Node {
    pub(crate) fn new(workers: usize, server_timeout: Duration) -> Self {
        Self {
            workers,
            server_timeout,
            clock_offset: 0,
            current_thread: false,
        }
    }

    /// Starts the node as a process on `url`, recording into `log`.
    pub(crate) fn spawn(self, url: &str, log: &ExecutionLog) -> Child {
        let module = if self.current_thread {
            concat!(module_path!(), "::current_thread")
        } else {
            module_path!()
        };
        Child::spawn(
            module,
            "worker",
            url,
            &[
                (EXECUTION_LOG, &log.path().display().to_string()),
                (WORKERS, &self.workers.to_string()),
                (
                    SERVER_TIMEOUT_MS,
                    &self.server_timeout.as_millis().to_string(),
                ),
                (CLOCK_OFFSET_S, &self.clock_offset.to_string()),
            ],
        )
    }
}

/// Starts a process holding SQLite's write lock on `url` for `hold`.
pub(crate) fn spawn_lock_holder(url: &str, hold: Duration) -> Child {
    Child::spawn(
        module_path!(),
        "lock",
        url,
        &[(LOCK_MS, &hold.as_millis().to_string())],
    )
}

fn var<T: std::str::FromStr>(name: &str) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("{name} is given"))
}

async fn run_child() {
    match process::role().as_deref() {
        Some("worker") => {}
        Some("lock") => {
            let hold = Duration::from_millis(var(LOCK_MS));
            return hold_sqlite_write_lock(&process::database_url(), hold).await;
        }
        _ => return,
    }
    let url = process::database_url();
    let offset = chrono::Duration::seconds(var(CLOCK_OFFSET_S));
    let jobs = Jobs::builder()
        .url(&url)
        .clock(SkewedClock::new(offset))
        .connect()
        .await
        .expect("node connects");
    let log = ExecutionLog::from_env();
    let server = JobServer::builder(jobs)
        .state(log.clone())
        .worker_count(var(WORKERS))
        .poll_interval(POLL_INTERVAL)
        .server_timeout(Duration::from_millis(var(SERVER_TIMEOUT_MS)))
        .shutdown_grace(Duration::from_secs(2))
        .start()
        .await
        .expect("server starts");
    // What `/metrics` (`jobs_server_healthy`) and the dashboard's banner report: each
    // change is marked in the log, for the tests to check when the node saw an outage.
    let metrics = server.metrics();
    let watch = tokio::spawn(async move {
        let mut healthy = true;
        loop {
            let now = metrics.healthy();
            if now != healthy {
                healthy = now;
                let word = if now { "healthy" } else { "unhealthy" };
                log.mark(&format!("{word}:{}", std::process::id()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    process::parent_gone().await;
    watch.abort();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child() {
    run_child().await;
}

/// A node whose jobs and server share one thread.
pub(crate) mod current_thread {
    #[tokio::test(flavor = "current_thread")]
    async fn child() {
        super::run_child().await;
    }
}
