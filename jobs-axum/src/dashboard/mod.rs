//! The dashboard: HTML pages over a JSON API over the [`Jobs`] client, with live
//! updates and Prometheus metrics.
//!
//! [`router`] is a `Router<S>` for any application state that holds a [`Jobs`] client
//! (`Jobs: FromRef<S>`), so an app can nest it into its own router; the plugin serves
//! it on its own port.
//!
//! # Pages
//!
//! `/` (overview: jobs by state, throughput of the last hour, servers, latest
//! failures), `/jobs` (jobs by state, with filters and paging), `/jobs/{id}` (one job:
//! arguments, attempts and their errors, history; requeue, delete), `/recurring-jobs`
//! and `/recurring-jobs/{id}` (schedules, next and last run; trigger, enable, disable,
//! delete), `/servers`. The pages are one
//! self-contained script and style sheet served from the binary, kept current over
//! server-sent events.
//!
//! # API
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /api/stats` | `{"counts": {"Enqueued": 3, …}, "total": 3, "throughput": [{"minute", "succeeded", "failed"}, …]}`: every state, and every minute of the last hour |
//! | `GET /api/jobs?state=&name=&search=&after=&limit=` | a page of jobs, newest first: `{"items": […], "next": id}`; pass `next` as `after` for the next page |
//! | `GET /api/jobs/{id}` | one job: arguments (`payload`), `history`, and `attempts` with their errors |
//! | `POST /api/jobs/{id}/requeue` | runs a finished or scheduled job again now: the job, or 404, or 409 while it runs |
//! | `DELETE /api/jobs/{id}` | deletes the job (a running attempt's result is discarded): 204, or 404 |
//! | `POST /api/jobs/requeue`, `POST /api/jobs/delete` | the same for every job matching `{"state", "name", "search"}` (one at least): `{"count": n}` |
//! | `GET /api/registered-jobs` | `{"items": [names]}`: the jobs this binary can run |
//! | `GET /api/recurring-jobs` | `{"items": [recurring jobs]}`: id, schedule, zone, job, next and last run, enabled, … |
//! | `GET /api/recurring-jobs/{id}` | one recurring job, or 404 |
//! | `POST /api/recurring-jobs/{id}/trigger` | runs it once now, schedule unchanged: `{"job_id": id}` |
//! | `POST /api/recurring-jobs/{id}/enable`, `/disable` | switches it on (from its next tick) or off: the recurring job |
//! | `DELETE /api/recurring-jobs/{id}` | deletes the schedule (its past runs stay): 204, or 404 |
//! | `GET /api/servers` | `{"now": t, "items": [servers as they last heartbeated]}` |
//! | `GET /api/events?topics=` | live updates, see below |
//! | `GET /metrics` | Prometheus metrics |
//!
//! Errors are `{"error": "…"}` with a 4xx or 5xx status.
//!
//! # Live updates
//!
//! `GET /api/events?topics=throughput,servers,recurring,jobs,job&id=&state=&…` is a stream of
//! server-sent events. The server reads what the page shows about every 750 ms and
//! sends an event only when it changed, named after the topic, with the JSON of the
//! matching route: `stats` (always), `throughput`, `servers`, `recurring`, `jobs` (with the list
//! filters), `job` (with `id`). A failed read is a `failure` event (`{"error": "…"}`); the next good round
//! sends `recovered`. Streams end when the plugin shuts down.
//!
//! # Security
//!
//! Every route asks for HTTP Basic auth when the settings carry a username and
//! password. Every answer carries a strict `Content-Security-Policy` (no inline
//! script, nothing from elsewhere, no framing) and `X-Content-Type-Options: nosniff`.
//!
//! A browser sends saved Basic credentials with any request to the dashboard, even one
//! a hostile page makes, so every request that changes something (any method but
//! `GET`, `HEAD`, `OPTIONS`) must carry the header `X-Jobs-Csrf: 1`, which no page of
//! another origin can add (that needs a CORS preflight, never granted here) and no
//! HTML form can send; and when the browser says where the request comes from, it must
//! be the dashboard itself (`Sec-Fetch-Site: same-origin`, or without that header, an
//! `Origin` naming the host the request went to). Anything else is refused with 403.
//! Scripts and `curl` just add the header: `curl -X POST -H 'X-Jobs-Csrf: 1' …`.

mod api;
mod auth;
mod events;
mod html;
mod metrics;
mod pages;
mod security;

use axum::extract::FromRef;
use axum::middleware;
use axum::routing::get;
use axum::{Extension, Router};
use jobs_core::{Jobs, ServerMetrics};
use tokio_util::sync::CancellationToken;

use crate::DashboardSettings;

/// The dashboard's routes, to nest anywhere in an app
/// (`app.nest("/jobs", dashboard::router(&settings.dashboard))`) or to serve on their
/// own. Only `username` and `password` are read from `settings`; the other keys are
/// about the standalone server.
pub fn router<S>(settings: &DashboardSettings) -> Router<S>
where
    Jobs: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    router_with(settings, Live::default())
}

/// What the plugin gives the dashboard beyond the client: the counters of the worker
/// server in this process, and when to end live-update streams.
#[derive(Debug, Clone, Default)]
pub(crate) struct Live {
    pub(crate) metrics: Option<ServerMetrics>,
    /// Cancelled at shutdown: open event streams end, so a graceful shutdown does not
    /// wait on a browser tab.
    pub(crate) stop: CancellationToken,
}

pub(crate) fn router_with<S>(settings: &DashboardSettings, live: Live) -> Router<S>
where
    Jobs: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    let routes = Router::new()
        .route("/", get(pages::page))
        .route("/jobs", get(pages::page))
        .route("/jobs/{id}", get(pages::page))
        .route("/recurring-jobs", get(pages::page))
        .route("/recurring-jobs/{id}", get(pages::page))
        .route("/servers", get(pages::page))
        .route("/assets/app.css", get(pages::style))
        .route("/assets/app.js", get(pages::script))
        .route("/assets/icon.svg", get(pages::icon))
        .merge(api::routes())
        .route("/api/events", get(events::events))
        .route("/metrics", get(metrics::metrics))
        .layer(Extension(live))
        .layer(middleware::from_fn(security::refuse_cross_site));
    auth::protect(routes, settings).layer(middleware::from_fn(security::add_headers))
}
