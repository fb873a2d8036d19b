//! Document analysis as a pipeline of retryable jobs: summarize → embed the chunks (a
//! batch, one job per chunk) → wait for a person's approval → announce, against a fake
//! model that fails about 30 % of its calls.
//!
//! ```sh
//! cargo run --example document_agent
//! curl -X POST localhost:3000/documents/1/analyze
//! curl localhost:3000/documents/1            # "awaiting_approval" once embedded
//! curl -X POST localhost:3000/documents/1/approve \
//!      -H 'content-type: application/json' -d '{"by": "ana"}'
//! ```
//!
//! Watch the steps, the batch of chunks (its page shows their progress), and the
//! retries of the calls the model failed (document 1's summary fails once; document 5
//! hits a few), on http://localhost:8000. The analysis waits for its approval for 48
//! hours, holding no worker, then gives up unannounced.

#[path = "shared/app.rs"]
mod app;
#[path = "shared/documents.rs"]
mod documents;

use axum::Router;
use axum::extract::FromRef;
use documents::{Documents, FakeModel};
use jobs::Jobs;
use jobs::axum::{JobsPlugin, JobsSettings};

#[derive(Clone, FromRef)]
struct AppState {
    jobs: Jobs,
    documents: Documents,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    app::init_tracing();
    let settings = JobsSettings::load("jobs.toml")?;
    let documents = Documents::with_samples();
    let plugin = JobsPlugin::builder(settings)
        .state(documents.clone())
        .state(FakeModel::flaky())
        .start()
        .await?;

    let routes = Router::new()
        .merge(documents::http::routes())
        .with_state(AppState {
            jobs: plugin.jobs(),
            documents,
        });
    // `axum::serve(…).with_graceful_shutdown(plugin.shutdown_signal())`, then
    // `plugin.shutdown()`: see shared/app.rs.
    app::serve(plugin, routes).await
}
