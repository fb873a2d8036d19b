//! Reminders scheduled for a time, kept in SQLite so they survive a restart.
//!
//! ```sh
//! cargo run --example reminders
//! curl -X POST localhost:3000/reminders -H 'content-type: application/json' \
//!      -d '{"user_id": 7, "text": "Review the Q3 deck", "in_seconds": 30}'
//! # or "at": "2026-11-28T10:00:00+01:00"; stop the app (Ctrl-C) and start it again
//! # before the time: the reminder still fires. Waiting ones: GET /reminders.
//! # Then it waits three days ("follow_up_seconds": 60 for less) for an answer:
//! curl -X POST localhost:3000/reminders/JOB_ID/answer -H 'content-type: application/json' \
//!      -d '{"text": "Done, thanks"}'
//! # and follows up once if none came.
//! ```
//!
//! The dashboard is on http://localhost:8000.

#[path = "shared/app.rs"]
mod app;
#[path = "shared/reminders.rs"]
mod reminders;

use axum::Router;
use jobs::axum::{JobsPlugin, JobsSettings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    app::init_tracing();
    let settings = JobsSettings::load("jobs.toml")?; // the file if present, then JOBS__… vars
    let plugin = JobsPlugin::builder(settings).start().await?;

    let routes = Router::new()
        .merge(reminders::http::routes())
        .with_state(plugin.jobs());
    // `axum::serve(…).with_graceful_shutdown(plugin.shutdown_signal())`, then
    // `plugin.shutdown()`: see shared/app.rs.
    app::serve(plugin, routes).await
}
