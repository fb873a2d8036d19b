//! An existing axum app whose state type has no room for `Jobs`: the plugin's layer puts
//! the client into request extensions, and the dashboard is nested under `/admin/jobs`
//! of the app's own router, behind the app's own auth layer.
//!
//! ```sh
//! cargo run --example nested_dashboard      # app and dashboard on :3000, no :8000
//!
//! curl -X POST localhost:3000/greet/Ada
//! curl -H 'authorization: Bearer let-me-in' localhost:3000/admin/jobs/api/jobs
//! ```
//!
//! `ADMIN_TOKEN` sets the token the admin routes ask for (default `let-me-in`).

#[path = "shared/app.rs"]
mod app;

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::post;
use axum::{Extension, Json, Router};
use jobs::Jobs;
use jobs::axum::{JobsPlugin, JobsSettings, SettingsError};
use jobs::prelude::*;
use serde_json::{Value, json};

/// The app's own state, which knows nothing of jobs.
#[derive(Clone)]
struct AppState {
    greeting: &'static str,
}

#[job(display = "Greet {name}")]
async fn greet(ctx: JobContext, name: String) {
    ctx.log().info(format!("hello, {name}"));
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    app::init_tracing();
    let mut settings = JobsSettings::load("jobs.toml")?;
    // The dashboard lives in the app's router, behind the app's auth.
    settings.dashboard.enabled = false;
    // The app's token check stands in front of it.
    settings.dashboard.protected_upstream = true;
    let plugin = JobsPlugin::builder(settings).start().await?;
    let token = std::env::var("ADMIN_TOKEN").unwrap_or_else(|_| "let-me-in".into());
    let routes = routes(&plugin, token)?;
    app::serve(plugin, routes).await
}

/// The app's router: its own routes with its own state, the plugin's layer for the
/// `Jobs` client, and the dashboard under `/admin/jobs` behind `token`.
fn routes(plugin: &JobsPlugin, token: String) -> Result<Router, SettingsError> {
    let admin = Router::new()
        .nest("/admin/jobs", plugin.dashboard_router()?)
        .layer(middleware::from_fn_with_state(token, require_token));
    Ok(Router::new()
        .route("/greet/{name}", post(greet_handler))
        .with_state(AppState { greeting: "hello" })
        .merge(admin)
        .layer(plugin.layer()))
}

async fn greet_handler(
    State(state): State<AppState>,
    Extension(jobs): Extension<Jobs>,
    Path(name): Path<String>,
) -> Result<Json<Value>, StatusCode> {
    let id = jobs
        .enqueue(Greet { name })
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    Ok(Json(json!({ "id": id, "said": state.greeting })))
}

/// The app's own auth: a bearer token.
async fn require_token(
    State(token): State<String>,
    request: Request,
    next: Next,
) -> Result<Response, StatusCode> {
    let expected = format!("Bearer {token}");
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    if given == Some(expected.as_str()) {
        Ok(next.run(request).await)
    } else {
        Err(StatusCode::UNAUTHORIZED)
    }
}
