#![doc = include_str!("../../docs/dashboard.md")]

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
