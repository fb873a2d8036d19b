//! `GET /metrics`: the Prometheus text format, written by hand.
//!
//! Jobs by state and the number of servers come from the database, so any process
//! serving the dashboard reports them. Attempts processed, succeeded and failed, and
//! their durations, are counted in memory by the worker server of this process: when
//! the plugin runs no server, they are left out (a comment says so) rather than
//! reported as zeros; so are `jobs_server_healthy` (whether that server renews its
//! leases and none of its loops waits to restart) and its loop restarts. While the
//! database cannot be read, the page still answers, with `jobs_database_up 0` and the
//! in-process series only.

use std::fmt::Write;

use axum::Extension;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use jobs_core::{DURATION_BUCKETS, Histogram, JobMetrics, Jobs};

use super::Live;
use super::api::{ApiError, read_stats};

pub(super) async fn metrics(
    State(jobs): State<Jobs>,
    Extension(live): Extension<Live>,
) -> Result<Response, ApiError> {
    // Read from the database; while it cannot be reached the page still answers, with
    // `jobs_database_up 0` and the in-process gauges, so an outage shows on the graphs.
    let read = async { Ok::<_, ApiError>((read_stats(&jobs).await?, jobs.servers().await?)) };
    let read = tokio::time::timeout(DATABASE_WAIT, read).await;
    let mut out = String::new();
    family(
        &mut out,
        "jobs_database_up",
        "gauge",
        "Whether this process could read the job store for this page (1) or not (0).",
    );
    match read {
        Ok(Ok((stats, servers))) => {
            let _ = writeln!(out, "jobs_database_up 1");
            family(
                &mut out,
                "jobs_by_state",
                "gauge",
                "Jobs in the store, by state.",
            );
            for (state, count) in &stats.counts {
                let _ = writeln!(out, "jobs_by_state{{state=\"{state}\"}} {count}");
            }
            family(
                &mut out,
                "jobs_servers",
                "gauge",
                "Servers registered in the store (heartbeating, or not yet found dead).",
            );
            let _ = writeln!(out, "jobs_servers {}", servers.len());
        }
        Ok(Err(error)) => {
            let _ = writeln!(out, "jobs_database_up 0");
            let _ = writeln!(
                out,
                "# The job store could not be read: {}",
                comment(error.message())
            );
        }
        Err(_) => {
            let _ = writeln!(out, "jobs_database_up 0");
            let _ = writeln!(
                out,
                "# The job store did not answer within {} s.",
                DATABASE_WAIT.as_secs()
            );
        }
    }
    match &live.metrics {
        Some(metrics) => {
            family(
                &mut out,
                "jobs_server_healthy",
                "gauge",
                "Whether this process's job server is healthy (1): it renews its leases \
                 and none of its loops waits to restart.",
            );
            let _ = writeln!(out, "jobs_server_healthy {}", u8::from(metrics.healthy()));
            family(
                &mut out,
                "jobs_server_loop_restarts_total",
                "counter",
                "Loops of this process's job server restarted after a panic or an early end.",
            );
            let _ = writeln!(
                out,
                "jobs_server_loop_restarts_total {}",
                metrics.restarts()
            );
            write_server_metrics(&mut out, &metrics.snapshot());
        }
        None => out.push_str(
            "# No job server runs in this process: the in-process counters \
             (jobs_server_healthy, jobs_processed_total, jobs_failed_total, \
             jobs_attempt_duration_seconds) are left out.\n",
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

/// How long `/metrics` waits for the database before answering without its counts.
const DATABASE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Text on one comment line.
fn comment(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A counter family: its name, help text, and its value for one job name.
type Counter = (&'static str, &'static str, fn(&JobMetrics) -> u64);

fn write_server_metrics(out: &mut String, jobs: &[JobMetrics]) {
    let counters: [Counter; 3] = [
        (
            "jobs_processed_total",
            "Attempts this process's server finished, by job name.",
            JobMetrics::processed,
        ),
        (
            "jobs_succeeded_total",
            "Attempts this process's server finished without error, by job name.",
            |job| job.succeeded,
        ),
        (
            "jobs_failed_total",
            "Attempts that failed in this process's server (retried or not), by job name.",
            |job| job.failed,
        ),
    ];
    for (name, help, value) in counters {
        family(out, name, "counter", help);
        for job in jobs {
            let _ = writeln!(
                out,
                "{name}{{name=\"{}\"}} {}",
                Label(&job.name),
                value(job)
            );
        }
    }
    histogram(
        out,
        jobs,
        "jobs_attempt_duration_seconds",
        "How long attempts ran in this process's server, by job name.",
        |job| &job.attempt_duration,
    );
    histogram(
        out,
        jobs,
        "jobs_queue_latency_seconds",
        "How long jobs waited between becoming due and starting, by job name.",
        |job| &job.queue_latency,
    );
}

/// One histogram family, a series per job name.
fn histogram(
    out: &mut String,
    jobs: &[JobMetrics],
    name: &str,
    help: &str,
    select: fn(&JobMetrics) -> &Histogram,
) {
    family(out, name, "histogram", help);
    for job in jobs {
        let label = Label(&job.name);
        let histogram = select(job);
        let mut cumulative = 0;
        for (bound, count) in DURATION_BUCKETS.iter().zip(histogram.buckets) {
            cumulative += count;
            let _ = writeln!(
                out,
                "{name}_bucket{{name=\"{label}\",le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{name=\"{label}\",le=\"+Inf\"}} {count}\n\
             {name}_sum{{name=\"{label}\"}} {sum}\n\
             {name}_count{{name=\"{label}\"}} {count}",
            count = histogram.count,
            sum = histogram.sum_seconds,
        );
    }
}

/// A label value with `\`, `"` and newlines escaped, as the text format asks.
struct Label<'a>(&'a str);

impl std::fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Label;

    #[test]
    fn escapes_label_values() {
        assert_eq!(Label("a\\b\"c\nd").to_string(), "a\\\\b\\\"c\\nd");
    }
}
