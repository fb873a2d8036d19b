//! `GET /api/events`: live updates over server-sent events.
//!
//! Each connection gets a task that reads what its page shows about every 750 ms and
//! sends an event only when that changed, named after the topic, with the same JSON
//! the matching API route answers. Topics are chosen with `?topics=` (comma-separated);
//! `stats` is always sent:
//!
//! | topic | event data, as from |
//! | --- | --- |
//! | `stats` | `GET /api/stats` without `throughput` |
//! | `throughput` | the `throughput` of `GET /api/stats` |
//! | `servers` | `GET /api/servers` |
//! | `recurring` | `GET /api/recurring-jobs` |
//! | `jobs` | `GET /api/jobs` with the same `state`, `name`, `search`, `after`, `limit` |
//! | `job` | `GET /api/jobs/{id}` for `?id=` |
//!
//! Where a job server runs in the process, a `health` event (`{"healthy", "leases_renewed",
//! "restarts"}`) is sent too, first and whenever it changes.
//!
//! A failed read is sent as a `failure` event (`{"error": "…"}`) and retried on the next
//! round; the first round that succeeds again sends `recovered`. A round that takes long (a huge table, a slow database) spaces the next ones
//! out, so a dashboard left open never loads the database more than it has to. The
//! stream ends when the plugin shuts down. At most `dashboard.max_event_streams` are
//! open at once; past that, 503 `{"code": "too_many_streams"}`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use jobs_core::{JobId, JobQuery, Jobs};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc};

use super::Live;
use super::api::{
    ApiError, ListParams, job_detail, parse_id, read_recurring, read_servers, read_stats,
    read_throughput,
};

/// How often a connection's page is read again, at least.
const ROUND: Duration = Duration::from_millis(750);

/// How often throughput is read when no job changed state: often enough to roll the
/// chart over to the next minute.
const THROUGHPUT_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Default, Deserialize)]
pub(super) struct EventParams {
    topics: Option<String>,
    id: Option<String>,
    #[serde(flatten)]
    list: ListParams,
}

/// What one connection watches.
#[derive(Debug)]
struct Watch {
    throughput: bool,
    servers: bool,
    recurring: bool,
    jobs: Option<JobQuery>,
    job: Option<JobId>,
}

impl Watch {
    fn parse(params: EventParams) -> Result<Self, ApiError> {
        let mut watch = Watch {
            throughput: false,
            servers: false,
            recurring: false,
            jobs: None,
            job: None,
        };
        let mut list = Some(params.list);
        for topic in params.topics.iter().flat_map(|topics| topics.split(',')) {
            match topic.trim() {
                "" | "stats" => {}
                "throughput" => watch.throughput = true,
                "servers" => watch.servers = true,
                "recurring" => watch.recurring = true,
                "jobs" => {
                    if let Some(list) = list.take() {
                        watch.jobs = Some(list.query()?);
                    }
                }
                "job" => {
                    let id = params.id.as_deref().ok_or_else(|| {
                        ApiError::bad_request("topics: `job` needs the job's `id`")
                    })?;
                    watch.job = Some(parse_id(id)?);
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "topics: unknown topic {other:?} (expected stats, throughput, \
                         servers, recurring, jobs or job)"
                    )));
                }
            }
        }
        Ok(watch)
    }
}

/// The places for open streams (`dashboard.max_event_streams`): each stream holds one
/// until its task ends, when the client has gone or the dashboard stops.
#[derive(Debug, Clone)]
pub(super) struct Slots(Arc<Semaphore>);

impl Slots {
    pub(super) fn new(max: usize) -> Self {
        Self(Arc::new(Semaphore::new(max)))
    }
}

pub(super) async fn events(
    State(jobs): State<Jobs>,
    Extension(live): Extension<Live>,
    Extension(Slots(slots)): Extension<Slots>,
    Query(params): Query<EventParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let watch = Watch::parse(params)?;
    let Ok(slot) = slots.try_acquire_owned() else {
        return Err(ApiError::coded(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            "too many live-update streams are open (dashboard.max_event_streams): close a \
             dashboard tab, or raise the setting",
        ));
    };
    let (sender, receiver) = mpsc::channel(16);
    tokio::spawn(async move {
        send_changes(jobs, watch, live, sender).await;
        drop(slot);
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let event = receiver.recv().await?;
        Some((Ok(event), receiver))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The last data sent per event name, to send only changes.
#[derive(Default)]
struct Sent(HashMap<&'static str, String>);

impl Sent {
    /// The event to send for `data` under `name`, or `None` when it is what was sent last.
    fn changed(&mut self, name: &'static str, data: &impl Serialize) -> Option<Event> {
        let json = serde_json::to_string(data).unwrap_or_else(|error| {
            serde_json::json!({ "error": format!("cannot encode {name}: {error}") }).to_string()
        });
        if self.0.get(name) == Some(&json) {
            return None;
        }
        self.0.insert(name, json.clone());
        Some(Event::default().event(name).data(json))
    }
}

async fn send_changes(jobs: Jobs, watch: Watch, live: Live, sender: mpsc::Sender<Event>) {
    let mut sent = Sent::default();
    let mut throughput_read: Option<Instant> = None;
    // Clients reconnect after this long if the connection drops.
    if sender
        .send(Event::default().retry(Duration::from_secs(2)))
        .await
        .is_err()
    {
        return;
    }
    loop {
        let started = Instant::now();
        let mut events = Vec::new();
        let mut failure = None;
        let mut stats_changed = false;
        match read_stats(&jobs).await {
            Ok(stats) => {
                if let Some(event) = sent.changed("stats", &stats) {
                    stats_changed = true;
                    events.push(event);
                }
            }
            Err(error) => failure = Some(error),
        }
        let throughput_due = throughput_read.is_none_or(|read| read.elapsed() >= THROUGHPUT_EVERY);
        if watch.throughput && (stats_changed || throughput_due) {
            throughput_read = Some(Instant::now());
            match read_throughput(&jobs).await {
                Ok(points) => events.extend(sent.changed("throughput", &points)),
                Err(error) => failure = Some(error),
            }
        }
        if watch.servers {
            match read_servers(&jobs).await {
                // Compared without `now`, which changes every round.
                Ok(servers) if sent.changed("servers-items", &servers.items).is_some() => {
                    events.extend(sent.changed("servers", &servers));
                }
                Ok(_) => {}
                Err(error) => failure = Some(error),
            }
        }
        if watch.recurring {
            match read_recurring(&jobs).await {
                Ok(recurring) => events.extend(sent.changed("recurring", &recurring)),
                Err(error) => failure = Some(error),
            }
        }
        if let Some(query) = &watch.jobs {
            match jobs.list(query.clone()).await {
                Ok(page) => events.extend(sent.changed("jobs", &page)),
                Err(error) => failure = Some(error.into()),
            }
        }
        if let Some(id) = watch.job {
            match job_detail(&jobs, id).await {
                Ok(job) => events.extend(sent.changed("job", &job)),
                Err(error) => failure = Some(error),
            }
        }
        if let Some(metrics) = &live.metrics {
            let health = serde_json::json!({
                "healthy": metrics.healthy(),
                "leases_renewed": metrics.leases_renewed(),
                "restarts": metrics.restarts(),
            });
            events.extend(sent.changed("health", &health));
        }
        match failure {
            Some(error) => events
                .extend(sent.changed("failure", &serde_json::json!({ "error": error.message() }))),
            None => {
                if sent.0.remove("failure").is_some() {
                    events.push(Event::default().event("recovered").data("{}"));
                }
            }
        }
        for event in events {
            if sender.send(event).await.is_err() {
                return;
            }
        }
        let pause = ROUND.max(started.elapsed() * 2);
        tokio::select! {
            () = live.stop.cancelled() => return,
            () = sender.closed() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}
