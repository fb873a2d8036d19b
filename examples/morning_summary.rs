//! "Every morning at 8, summarize my inbox": a recurring job declared with
//! `#[recurring]`, stored at boot and owned by the ticker from then on.
//!
//! ```sh
//! cargo run --example morning_summary       # app on :3000, dashboard on http://localhost:8000
//! curl -X POST localhost:3000/inbox/summarize-now
//! curl localhost:3000/inbox/summaries
//! ```

#[path = "shared/app.rs"]
mod app;
#[path = "shared/morning_summary.rs"]
mod morning_summary;

use axum::Router;
use axum::extract::FromRef;
use jobs::Jobs;
use jobs::axum::{JobsPlugin, JobsSettings};
use morning_summary::Inbox;

#[derive(Clone, FromRef)]
struct AppState {
    jobs: Jobs,
    inbox: Inbox,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    app::init_tracing();
    let settings = JobsSettings::load("jobs.toml")?;
    let inbox = Inbox::default();
    let plugin = JobsPlugin::builder(settings)
        .state(inbox.clone())
        .start()
        .await?;
    let next = plugin
        .jobs()
        .recurring()
        .get("morning-email-summary")
        .await?;
    println!("next morning summary: {}", next.next_run_at);
    let routes = Router::new()
        .merge(morning_summary::http::routes())
        .with_state(AppState {
            jobs: plugin.jobs(),
            inbox,
        });
    app::serve(plugin, routes).await
}
