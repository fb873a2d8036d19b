//! The jobs settings as one section of the app's own configuration, read with the
//! `config` crate: a TOML file with environment variables over it, into one struct.
//!
//! ```sh
//! cargo run --example app_config                 # app.toml if present, else defaults
//! APP__PORT=3001 APP__JOBS__DASHBOARD__PORT=9000 \
//! APP__JOBS__DATABASE__SQLITE_SYNCHRONOUS=full cargo run --example app_config
//! curl -X POST localhost:3000/greet/Ada
//! ```
//!
//! `app.toml` (every key optional but the app's own):
//!
//! ```toml
//! port = 3000
//!
//! [jobs]
//! database_url = "sqlite://app_config.db"
//!
//! [jobs.database]
//! sqlite_synchronous = "full"
//!
//! [jobs.background_job_server]
//! worker_count = 16
//!
//! [jobs.dashboard]
//! port = 8000
//! ```
//!
//! Missing keys take their defaults (`#[serde(default)]` on the section, and every
//! key of `JobsSettings` has one); a bad value fails at start naming its key
//! (`jobs.dashboard.port`). `JobsSettings::load("jobs.toml")` and the `JOBS__…`
//! variables remain for apps without a configuration of their own.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use jobs::Jobs;
use jobs::axum::{JobsPlugin, JobsSettings};
use jobs::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};

/// The app's whole configuration: its own keys, and the jobs section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppSettings {
    /// Where the app listens (`APP__PORT`).
    #[serde(default = "default_port")]
    port: u16,
    /// `[jobs]` in the file, `APP__JOBS__…` in the environment.
    #[serde(default)]
    jobs: JobsSettings,
}

fn default_port() -> u16 {
    3000
}

impl AppSettings {
    /// `app.toml` when it exists, then `APP__…` variables (`__` between levels:
    /// `APP__JOBS__BACKGROUND_JOB_SERVER__WORKER_COUNT=4`).
    fn load() -> Result<Self, config::ConfigError> {
        config::Config::builder()
            .add_source(config::File::with_name("app.toml").required(false))
            .add_source(
                config::Environment::with_prefix("APP")
                    .prefix_separator("__")
                    .separator("__"),
            )
            .build()?
            .try_deserialize()
    }
}

#[job(name = "app_config.greet", display = "Greet {name}")]
async fn greet(name: String) {
    println!("👋 hello, {name}");
}

async fn enqueue_greeting(
    State(jobs): State<Jobs>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), (StatusCode, String)> {
    let id = jobs
        .enqueue(Greet { name })
        .await
        .map_err(|error| (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "job_id": id }))))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let settings = AppSettings::load()?;
    tracing::info!(?settings, "settings");
    // The plugin checks the section (values in range, keys that go together) at start.
    let plugin = JobsPlugin::builder(settings.jobs).start().await?;
    let routes = Router::new()
        .route("/greet/{name}", post(enqueue_greeting))
        .with_state(plugin.jobs());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", settings.port)).await?;
    println!("app:       http://{}", listener.local_addr()?);
    if let Some(addr) = plugin.dashboard_addr() {
        println!("dashboard: http://{addr}");
    }
    axum::serve(listener, routes)
        .with_graceful_shutdown(plugin.shutdown_signal())
        .await?;
    plugin.shutdown().await;
    Ok(())
}
