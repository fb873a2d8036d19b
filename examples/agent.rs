//! The main example: an agent's backend with the scenarios of "Why AI agents need
//! background jobs" in one axum app — reminders for later, a morning summary every day
//! at 8, and document analysis as a pipeline of retryable jobs against a flaky model.
//!
//! ```sh
//! cargo run --example agent          # app on :3000, dashboard on http://localhost:8000
//!
//! curl -X POST localhost:3000/reminders -H 'content-type: application/json' \
//!      -d '{"user_id": 7, "text": "Review the Q3 deck", "at": "2026-11-28T10:00:00+01:00"}'
//! curl -X POST localhost:3000/documents/1/analyze
//! curl -X POST localhost:3000/inbox/summarize-now
//! ```
//!
//! On its first start (a database without jobs) it enqueues a demo, so the dashboard
//! shows the three scenarios in motion at once: a reminder due in a minute, the
//! analysis of document 1 whose first model call fails and is retried, and a run of the
//! morning summary beside its daily schedule. `DEMO=0` turns that off.
//!
//! The fake model fails some calls (document 1's first summary; document 5 hits a
//! few), so the dashboard shows steps that failed, waited and were retried on their own.
//!
//! Settings come from `jobs.toml` in the working directory, if there is one, and
//! `JOBS__…` environment variables (`JOBS__DASHBOARD__PORT=9000`); `PORT` moves the app.

#[path = "shared/app.rs"]
mod app;
#[path = "shared/demo.rs"]
mod demo;
#[path = "shared/documents.rs"]
mod documents;
#[path = "shared/morning_summary.rs"]
mod morning_summary;
#[path = "shared/reminders.rs"]
mod reminders;

use axum::Router;
use axum::extract::FromRef;
use documents::{Documents, FakeModel};
use jobs::Jobs;
use jobs::axum::{JobsPlugin, JobsSettings};
use morning_summary::Inbox;

#[derive(Clone, FromRef)]
struct AppState {
    jobs: Jobs,
    documents: Documents,
    inbox: Inbox,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    app::init_tracing();
    let settings = JobsSettings::load("jobs.toml")?;
    let documents = Documents::with_samples();
    let inbox = Inbox::default();
    // The plugin upserts the `#[recurring]` morning summary at boot.
    let plugin = JobsPlugin::builder(settings)
        .state(documents.clone())
        .state(FakeModel::flaky())
        .state(inbox.clone())
        .start()
        .await?;
    // A first look with something in motion: only on a database without jobs.
    demo::seed(&plugin.jobs()).await?;
    let routes = Router::new()
        .merge(reminders::http::routes())
        .merge(documents::http::routes())
        .merge(morning_summary::http::routes())
        .with_state(AppState {
            jobs: plugin.jobs(),
            documents,
            inbox,
        });
    // `axum::serve(…).with_graceful_shutdown(plugin.shutdown_signal())`, then
    // `plugin.shutdown()`: see shared/app.rs.
    app::serve(plugin, routes).await
}
