//! The dashboard: an HTML overview and a JSON API over the [`Jobs`] client.
//!
//! [`router`] is a `Router<S>` for any application state that holds a [`Jobs`] client
//! (`Jobs: FromRef<S>`), so an app can nest it into its own router; the plugin serves
//! it on its own port. Every route asks for HTTP Basic auth when the settings carry a
//! username and password.
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /` | the overview page: jobs by state, registered jobs, latest jobs |
//! | `GET /api/stats` | `{"counts": {"Enqueued": 3, …}, "total": 3}`, every state listed |
//! | `GET /api/jobs?state=&name=&after=&limit=` | a page of jobs, newest first: `{"items": […], "next": id}` |
//! | `GET /api/jobs/{id}` | one job with its history |
//! | `DELETE /api/jobs/{id}` | deletes the job: 204, or 404 |
//!
//! Errors are `{"error": "…"}` with a 4xx or 5xx status.
//!
//! The mutating route is a `DELETE`, which a browser does not send cross-site without
//! a CORS preflight, which this router never grants.

mod api;
mod auth;
mod html;
mod overview;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::get;
use jobs_core::Jobs;

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
    let routes = Router::new()
        .route("/", get(overview::page))
        .merge(api::routes());
    auth::protect(routes, settings)
}
