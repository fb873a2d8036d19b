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
//! | `queues` | `GET /api/queues` |
//! | `jobs` | `GET /api/jobs` with the same `state`, `name`, `search`, `after`, `limit` |
//! | `job` | `GET /api/jobs/{id}` for `?id=` |
//!
//! Where a job server runs in the process, a `health` event (`{"healthy", "leases_renewed",
//! "restarts"}`) is sent too, first and whenever it changes.
//!
//! Streams share their reads: each topic is read once per interval for every stream
//! that watches it (see `feeds`), on the dashboard's own connections. A failed read is
//! sent as a `failure` event (`{"error": "…"}`) and retried on the next round; the first
//! round that succeeds again sends `recovered`. A read that takes long (a huge table, a
//! slow database) spaces the next ones out, so a dashboard left open never loads the
//! database more than it has to. The stream ends when the plugin shuts down. At most
//! `dashboard.max_event_streams` are open at once; past that, 503
//! `{"code": "too_many_streams"}`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use futures_util::future::select_all;
use jobs_core::{BatchId, JobId, JobQuery, Jobs};
use serde::Deserialize;
use tokio::sync::{Semaphore, mpsc};

use super::Live;
use super::api::{ApiError, ListParams, parse_batch, parse_id};
use super::feeds::{Feeds, ListPage, ROUND, Topic};

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
    queues: bool,
    jobs: Option<JobQuery>,
    job: Option<JobId>,
    /// A batch and the page of its members (`after`, `limit`).
    batch: Option<(BatchId, JobQuery)>,
}

impl Watch {
    fn parse(params: EventParams) -> Result<Self, ApiError> {
        let mut watch = Watch {
            throughput: false,
            servers: false,
            recurring: false,
            queues: false,
            jobs: None,
            job: None,
            batch: None,
        };
        let mut list = Some(params.list);
        for topic in params.topics.iter().flat_map(|topics| topics.split(',')) {
            match topic.trim() {
                "" | "stats" => {}
                "throughput" => watch.throughput = true,
                "servers" => watch.servers = true,
                "recurring" => watch.recurring = true,
                "queues" => watch.queues = true,
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
                "batch" => {
                    let id = params.id.as_deref().ok_or_else(|| {
                        ApiError::bad_request("topics: `batch` needs the batch's `id`")
                    })?;
                    let members = match list.take() {
                        Some(list) => list.query()?,
                        None => JobQuery::default(),
                    };
                    watch.batch = Some((parse_batch(id)?, members));
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "topics: unknown topic {other:?} (expected stats, throughput, \
                         servers, recurring, queues, jobs, job or batch)"
                    )));
                }
            }
        }
        Ok(watch)
    }

    /// The topics it watches, in the order their events are sent.
    fn topics(self) -> Vec<Topic> {
        let mut topics = vec![Topic::Stats];
        if self.throughput {
            topics.push(Topic::Throughput);
        }
        if self.servers {
            topics.push(Topic::Servers);
        }
        if self.recurring {
            topics.push(Topic::Recurring);
        }
        if self.queues {
            topics.push(Topic::Queues);
        }
        if let Some(query) = self.jobs {
            topics.push(Topic::Jobs(ListPage::new(query)));
        }
        if let Some(id) = self.job {
            topics.push(Topic::Job(id));
        }
        if let Some((id, members)) = self.batch {
            topics.push(Topic::Batch(id, ListPage::new(members)));
        }
        topics
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
    Extension(feeds): Extension<Feeds>,
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
        send_changes(&feeds, &jobs, watch, live, sender).await;
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
struct Sent(HashMap<&'static str, Arc<str>>);

impl Sent {
    /// The event to send for `json` under `name`, or `None` when it is what was sent last.
    fn changed(&mut self, name: &'static str, json: &Arc<str>) -> Option<Event> {
        if self.0.get(name) == Some(json) {
            return None;
        }
        self.0.insert(name, json.clone());
        Some(Event::default().event(name).data(&**json))
    }
}

async fn send_changes(
    feeds: &Feeds,
    jobs: &Jobs,
    watch: Watch,
    live: Live,
    sender: mpsc::Sender<Event>,
) {
    let mut sent = Sent::default();
    // Clients reconnect after this long if the connection drops.
    if sender
        .send(Event::default().retry(Duration::from_secs(2)))
        .await
        .is_err()
    {
        return;
    }
    let mut watched: Vec<_> = watch
        .topics()
        .into_iter()
        .map(|topic| {
            let event = topic.event();
            (event, feeds.watch(jobs, topic, &live.stop))
        })
        .collect();
    loop {
        let mut events = Vec::new();
        let mut failure = None;
        for (event, receiver) in &mut watched {
            match &*receiver.borrow_and_update() {
                None => {}
                Some(Ok(json)) => events.extend(sent.changed(event, json)),
                Some(Err(message)) => failure = Some(message.clone()),
            }
        }
        if let Some(metrics) = &live.metrics {
            let health = serde_json::json!({
                "healthy": metrics.healthy(),
                "leases_renewed": metrics.leases_renewed(),
                "restarts": metrics.restarts(),
            });
            events.extend(sent.changed("health", &Arc::from(health.to_string())));
        }
        match failure {
            Some(message) => {
                let failure = serde_json::json!({ "error": &*message }).to_string();
                events.extend(sent.changed("failure", &Arc::from(failure)));
            }
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
        // Woken by a new snapshot of any topic, or (for `health`, read in this
        // process) by the round.
        let changed = select_all(
            watched
                .iter_mut()
                .map(|(_, receiver)| Box::pin(receiver.changed())),
        );
        let health_round = async {
            if live.metrics.is_some() {
                tokio::time::sleep(ROUND).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = live.stop.cancelled() => return,
            () = sender.closed() => return,
            (changed, _, _) = changed => {
                // A reader ends only at stop: so does the stream.
                if changed.is_err() {
                    return;
                }
            }
            () = health_round => {}
        }
    }
}
