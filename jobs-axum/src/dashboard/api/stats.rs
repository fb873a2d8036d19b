//! Stats (jobs by state, throughput over the last hour) and the servers.

use std::time::Duration;

use axum::extract::{FromRef, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use jobs_core::{JobState, Jobs, ServerInfo, Unserved};
use serde::Serialize;

use super::ApiError;

pub(super) fn routes<S>() -> Router<S>
where
    Jobs: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/stats", get(stats))
        .route("/api/servers", get(servers))
}

/// The minutes the throughput covers.
const THROUGHPUT_MINUTES: i64 = 60;

/// How many jobs are in each state, and finished attempts per minute.
#[derive(Debug, Serialize)]
pub(in super::super) struct Stats {
    /// Every state, in display order, 0 when empty.
    #[serde(serialize_with = "as_map")]
    pub(in super::super) counts: Vec<(JobState, u64)>,
    pub(in super::super) total: u64,
    /// One point per minute of the last hour, oldest first, empty minutes included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(in super::super) throughput: Option<Vec<Minute>>,
}

/// Attempts finished in one minute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(in super::super) struct Minute {
    /// Its start.
    minute: DateTime<Utc>,
    succeeded: u64,
    /// Failed attempts, retried or not.
    failed: u64,
}

fn as_map<S: serde::Serializer>(
    counts: &[(JobState, u64)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(counts.iter().map(|(state, count)| (state, count)))
}

/// The counts alone: what live updates poll often.
pub(in super::super) async fn read_stats(jobs: &Jobs) -> Result<Stats, ApiError> {
    let stored = jobs.count_by_state().await?;
    let counts: Vec<(JobState, u64)> = JobState::ALL
        .into_iter()
        .map(|state| {
            let count = stored
                .iter()
                .find_map(|&(stored, count)| (stored == state).then_some(count))
                .unwrap_or(0);
            (state, count)
        })
        .collect();
    let total = counts.iter().map(|(_, count)| count).sum();
    Ok(Stats {
        counts,
        total,
        throughput: None,
    })
}

/// Finished attempts per minute over the last hour, with the minutes nothing finished
/// in filled with zeros so a chart needs no gaps logic.
pub(in super::super) async fn read_throughput(jobs: &Jobs) -> Result<Vec<Minute>, ApiError> {
    let window = Duration::from_secs(60 * THROUGHPUT_MINUTES as u64);
    let stored = jobs.throughput(window).await?;
    let now = jobs.clock().now();
    let this_minute = now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now);
    Ok((0..THROUGHPUT_MINUTES)
        .rev()
        .map(|ago| {
            let minute = this_minute - TimeDelta::minutes(ago);
            let point = stored.iter().find(|point| point.minute == minute);
            Minute {
                minute,
                succeeded: point.map_or(0, |point| point.succeeded),
                failed: point.map_or(0, |point| point.failed),
            }
        })
        .collect())
}

async fn stats(State(jobs): State<Jobs>) -> Result<Json<Stats>, ApiError> {
    let mut stats = read_stats(&jobs).await?;
    stats.throughput = Some(read_throughput(&jobs).await?);
    Ok(Json(stats))
}

/// The servers as they last heartbeated, with the time of the database's clock to
/// read their heartbeats against, and the job names with due jobs none of them runs.
#[derive(Debug, Serialize)]
pub(in super::super) struct Servers {
    pub(in super::super) now: DateTime<Utc>,
    pub(in super::super) items: Vec<ServerInfo>,
    pub(in super::super) unserved: Vec<Unserved>,
}

pub(in super::super) async fn read_servers(jobs: &Jobs) -> Result<Servers, ApiError> {
    Ok(Servers {
        now: jobs.clock().now(),
        items: jobs.servers().await?,
        unserved: jobs.unserved().await?,
    })
}

async fn servers(State(jobs): State<Jobs>) -> Result<Json<Servers>, ApiError> {
    Ok(Json(read_servers(&jobs).await?))
}
