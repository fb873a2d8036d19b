//! `GET /metrics`: the Prometheus text format, rendered by `metrics-exporter-prometheus`.
//!
//! Every figure goes through the [`metrics`] facade. A job server records its own as
//! attempts run (queue latency, attempt durations, attempts by outcome, its health and
//! loop restarts: see [`jobs_core::metric_names`]); this page records the store's on
//! each scrape: jobs by state, jobs waiting per queue and the age of the oldest, the
//! servers registered, and whether the store could be read (`jobs_database_up`).
//!
//! The first dashboard router built (or the plugin's boot, before its server starts)
//! installs a Prometheus recorder as the process's global one, and this page renders
//! it. When the app installed its own recorder first, ours is not installed: every
//! figure goes to the app's recorder, to be exported with the app's own, and this page
//! says so in a comment instead of rendering a second registry (the figures cannot be
//! read back out of a recorder we do not own). While the database cannot be read, the
//! page still answers, with `jobs_database_up 0` and the store's last figures.

use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock, PoisonError};

use axum::Extension;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use jobs_core::{DURATION_BUCKETS, Jobs, QueueWaiting, ServerInfo};
use metrics::{counter, describe_counter, describe_gauge, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::Live;
use super::api::{ApiError, Stats, read_stats};

/// The names of the figures this page reads from the store on each scrape.
mod names {
    pub(super) const DATABASE_UP: &str = "jobs_database_up";
    pub(super) const BY_STATE: &str = "jobs_by_state";
    pub(super) const SERVERS: &str = "jobs_servers";
    pub(super) const WAITING: &str = "jobs_waiting";
    pub(super) const OLDEST_WAITING: &str = "jobs_oldest_waiting_age_seconds";
    pub(super) const SNAPSHOT_READS: &str = "jobs_dashboard_snapshot_reads_total";
}

/// Counts one read of a live-update topic, shared by every stream that watches it.
pub(super) fn count_snapshot_read(topic: &'static str) {
    counter!(names::SNAPSHOT_READS, "topic" => topic).increment(1);
}

/// The exporter this process installed, or `None` when the app had installed a
/// recorder of its own first.
static EXPORTER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder as the global one unless one is installed already;
/// → its handle, or `None` when the app's recorder takes the figures. Idempotent.
pub(crate) fn install_exporter() -> Option<&'static PrometheusHandle> {
    EXPORTER
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&DURATION_BUCKETS)
                .expect("the duration buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            let installed = metrics::set_global_recorder(recorder).is_ok();
            if !installed {
                tracing::info!(
                    "a metrics recorder is already installed: jobs records its figures \
                     there, and /metrics leaves their export to it"
                );
            }
            jobs_core::describe_metrics();
            describe_store_figures();
            if installed {
                // Histogram observations wait in a buffer until drained: a render drains
                // them, and so does this upkeep, so that memory stays bounded when
                // nobody scrapes.
                let upkeep = handle.clone();
                let spawned = std::thread::Builder::new()
                    .name("jobs-metrics-upkeep".to_owned())
                    .spawn(move || {
                        loop {
                            std::thread::sleep(UPKEEP_EVERY);
                            upkeep.run_upkeep();
                        }
                    });
                if let Err(error) = spawned {
                    tracing::warn!(%error, "no metrics upkeep thread: histograms are drained only by /metrics");
                }
            }
            installed.then_some(handle)
        })
        .as_ref()
}

/// How often the exporter's histogram buffers are drained between scrapes.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

fn describe_store_figures() {
    describe_gauge!(
        names::DATABASE_UP,
        "Whether this process could read the job store at the last scrape (1) or not (0)."
    );
    describe_gauge!(names::BY_STATE, "Jobs in the store, by state.");
    describe_gauge!(
        names::SERVERS,
        "Servers registered in the store (heartbeating, or not yet found dead)."
    );
    describe_gauge!(names::WAITING, "Jobs due and not yet started, by queue.");
    describe_counter!(
        names::SNAPSHOT_READS,
        "Reads of the store for the dashboard's live updates, by topic: one per interval \
         per topic watched, however many streams watch it."
    );
    describe_gauge!(
        names::OLDEST_WAITING,
        metrics::Unit::Seconds,
        "How long the longest-waiting due job of each queue has waited, 0 when none waits."
    );
}

/// Queues given a waiting figure so far: set back to 0 once they have none waiting,
/// rather than keeping their last value.
static QUEUES_SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// One scrape at a time sets the store's figures and renders them, so that two
/// dashboards of one process (two stores) each render what they read.
static SCRAPE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub(super) async fn metrics(
    State(jobs): State<Jobs>,
    Extension(live): Extension<Live>,
) -> Result<Response, ApiError> {
    let exporter = install_exporter();
    // Read from the database; while it cannot be reached the page still answers, with
    // `jobs_database_up 0`, so an outage shows on the graphs.
    let read = async {
        Ok::<_, ApiError>((
            read_stats(&jobs).await?,
            jobs.servers().await?,
            jobs.waiting_by_queue().await?,
        ))
    };
    let read = tokio::time::timeout(DATABASE_WAIT, read).await;
    let _scrape = SCRAPE.lock().await;
    let mut out = String::new();
    match read {
        Ok(Ok((stats, servers, waiting))) => record_store(&jobs, &stats, &servers, &waiting),
        Ok(Err(error)) => {
            gauge!(names::DATABASE_UP).set(0.0);
            out.push_str(&format!(
                "# The job store could not be read: {}\n",
                comment(error.message())
            ));
        }
        Err(_) => {
            gauge!(names::DATABASE_UP).set(0.0);
            out.push_str(&format!(
                "# The job store did not answer within {} s.\n",
                DATABASE_WAIT.as_secs()
            ));
        }
    }
    if live.metrics.is_none() {
        out.push_str(
            "# No job server runs in this process: its figures (jobs_attempts_total, \
             jobs_attempt_duration_seconds, jobs_queue_latency_seconds, \
             jobs_server_healthy) come from the processes that run one.\n",
        );
    }
    match exporter {
        Some(handle) => out.push_str(&handle.render()),
        None => out.push_str(
            "# The app installed its own metrics recorder: jobs records its figures \
             there, to be exported with the app's.\n",
        ),
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}

/// Records what was read from the store through the facade.
fn record_store(jobs: &Jobs, stats: &Stats, servers: &[ServerInfo], waiting: &[QueueWaiting]) {
    gauge!(names::DATABASE_UP).set(1.0);
    for (state, count) in &stats.counts {
        gauge!(names::BY_STATE, "state" => state.as_str()).set(*count as f64);
    }
    gauge!(names::SERVERS).set(servers.len() as f64);
    let now = jobs.clock().now();
    let mut seen = QUEUES_SEEN.lock().unwrap_or_else(PoisonError::into_inner);
    for queue in seen.iter() {
        if !waiting.iter().any(|waiting| &waiting.queue == queue) {
            gauge!(names::WAITING, "queue" => queue.clone()).set(0.0);
            gauge!(names::OLDEST_WAITING, "queue" => queue.clone()).set(0.0);
        }
    }
    for queue in waiting {
        let age = (now - queue.oldest_due).to_std().unwrap_or_default();
        gauge!(names::WAITING, "queue" => queue.queue.clone()).set(queue.waiting as f64);
        gauge!(names::OLDEST_WAITING, "queue" => queue.queue.clone()).set(age.as_secs_f64());
        seen.insert(queue.queue.clone());
    }
}

/// How long `/metrics` waits for the database before answering without its counts.
const DATABASE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Text on one comment line.
fn comment(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}
