#![doc = include_str!("../../docs/dashboard.md")]

mod api;
mod auth;
mod events;
mod feeds;
mod html;
mod metrics;
mod pages;
mod security;
mod throttle;

pub(crate) use metrics::install_exporter;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::get;
use axum::{Extension, Router};
use jobs_core::{Clock, Jobs, ServerMetrics, SystemClock};
pub use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::hosts::refuse_foreign;
use crate::settings::Mount;
use crate::{AllowedHosts, DashboardSettings, SettingsError};

/// The dashboard's routes, to nest into an app
/// (`app.nest("/jobs", dashboard::router(&settings.dashboard, shutdown)?)`).
/// `username`, `password`, the read-only pair, `protected_upstream`, `bind` and
/// `allowed_hosts` are read from `settings` (the names the routes answer to: see
/// [`AllowedHosts`]); the other keys are about the standalone server.
///
/// Cancel `shutdown` when the app's graceful shutdown starts (the token's
/// `cancelled_owned()` is a signal for `with_graceful_shutdown`): open live-update
/// streams then end, so the app does not wait on a browser tab.
///
/// The routes read through the `Jobs` of the app's state. So that open dashboards never
/// take the connections its job server needs, give them a client of their own:
/// `dashboard::router::<Jobs>(…)?.with_state(jobs.with_pool_of_its_own(2, "jobs-dashboard"))`
/// (what the plugin's dashboard does, with `dashboard.pool_size`).
///
/// An app's router may be public, so without credentials in `settings` this is an
/// error naming `dashboard.protected_upstream`, unless that setting says the app's own
/// auth (or a proxy) stands in front of the dashboard.
pub fn router<S>(
    settings: &DashboardSettings,
    shutdown: CancellationToken,
) -> Result<Router<S>, SettingsError>
where
    Jobs: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    let live = Live {
        stop: shutdown,
        ..Live::default()
    };
    nested(settings, live)
}

/// The dashboard nested into an app, once its settings allow it.
pub(crate) fn nested<S>(
    settings: &DashboardSettings,
    live: Live,
) -> Result<Router<S>, SettingsError>
where
    Jobs: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    settings.check_exposure(Mount::Nested)?;
    tracing::info!("jobs dashboard nested into the app: {}", settings.access());
    Ok(router_with(settings, live))
}

/// What the plugin gives the dashboard beyond the client: the counters of the worker
/// server in this process, and when to end live-update streams.
#[derive(Debug, Clone, Default)]
pub(crate) struct Live {
    pub(crate) metrics: Option<ServerMetrics>,
    /// Cancelled at shutdown: open event streams end, so a graceful shutdown does not
    /// wait on a browser tab.
    pub(crate) stop: CancellationToken,
    /// The client's clock, for the login throttle's windows; the system's without one.
    pub(crate) clock: Option<Arc<dyn Clock>>,
}

pub(crate) fn router_with<S>(settings: &DashboardSettings, live: Live) -> Router<S>
where
    Jobs: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    // The exporter `/metrics` renders, installed before anything records.
    metrics::install_exporter();
    // Every answer but the event stream: bounded in time and gzipped when the browser
    // accepts it (the script is most of a first load; job lists compress well).
    let answers = Router::new()
        .route("/", get(pages::page))
        .route("/jobs", get(pages::page))
        .route("/jobs/{id}", get(pages::page))
        .route("/batches/{id}", get(pages::page))
        .route("/recurring-jobs", get(pages::page))
        .route("/recurring-jobs/{id}", get(pages::page))
        .route("/queues", get(pages::page))
        .route("/servers", get(pages::page))
        .route("/assets/app.css", get(pages::style))
        .route("/assets/app.js", get(pages::script))
        .route("/assets/icon.svg", get(pages::icon))
        .merge(
            api::routes()
                .layer(middleware::map_response(api::rejection_as_json))
                .layer(RequestBodyLimitLayer::new(API_BODY_LIMIT)),
        )
        .route("/metrics", get(metrics::metrics))
        .layer(CompressionLayer::new().gzip(true))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            ANSWER_TIMEOUT,
        ))
        .layer(middleware::map_response(api::plumbing_error_as_json));
    // The event stream stays open as long as the page does, and is never compressed:
    // a gzip encoder would hold events back until its buffer fills.
    let clock = live.clock.clone().unwrap_or_else(|| Arc::new(SystemClock));
    let routes = answers
        .route("/api/events", get(events::events))
        .layer(Extension(events::Slots::new(settings.max_event_streams)))
        .layer(Extension(feeds::Feeds::default()))
        .layer(Extension(live))
        .layer(middleware::from_fn(security::refuse_cross_site));
    // The host check comes first: a request under a foreign name learns nothing, not
    // even that the dashboard asks for a password.
    auth::protect(routes, settings, clock)
        .layer(middleware::from_fn_with_state(
            AllowedHosts::from_settings(settings),
            refuse_foreign,
        ))
        .layer(middleware::from_fn(security::add_headers))
        .layer(TraceLayer::new_for_http())
}

/// The largest request body the API reads. Its bodies are a few filters (bulk requeue
/// and delete); anything much larger is not the dashboard's script, and is answered
/// `413 Payload Too Large` before it is read.
const API_BODY_LIMIT: usize = 64 * 1024;

/// How long any answer but the event stream may take before it is `408 Request
/// Timeout`: far above a page or an API read, long enough for a bulk action over many
/// jobs.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
