//! The axum plugin of [`jobs`](https://docs.rs/jobs), re-exported there as `jobs::axum`.
//!
//! At boot the plugin reads [`JobsSettings`], connects to the job store (running
//! migrations), starts a worker server with the app's state, and serves the
//! [dashboard] on its own port (8000 by default, on 127.0.0.1). Handlers get the
//! [`Jobs`](jobs_core::Jobs) client as `State<Jobs>`; when the app stops, running jobs get a grace period
//! to finish and the rest are put back for the next start — never lost.
//!
//! # Mounting
//!
//! ```no_run
//! # mod jobs { pub use jobs_core::*; pub use jobs_axum as axum; }
//! # mod hidden {
//! #     #[derive(serde::Serialize, serde::Deserialize)]
//! #     pub struct SendReminder { pub user_id: u64, pub text: String }
//! #     impl jobs_core::Job for SendReminder {
//! #         const DESCRIPTOR: jobs_core::JobDescriptor =
//! #             jobs_core::JobDescriptor::new("send_reminder", |_| Box::pin(async { Ok(()) }));
//! #         fn display_name(&self) -> String { "Send reminder".into() }
//! #     }
//! # }
//! # #[derive(Clone)] struct Mailer;
//! # use hidden::SendReminder;
//! use axum::extract::{FromRef, State};
//! use axum::{Json, Router, http::StatusCode, routing::post};
//! use jobs::Jobs;
//! use jobs::axum::{JobsPlugin, JobsSettings};
//!
//! // `#[job] async fn send_reminder(State(mailer): State<Mailer>, user_id: u64, text: String)`
//! // is what defines `SendReminder`; see the `jobs` crate.
//!
//! #[derive(Clone, FromRef)]
//! struct AppState {
//!     jobs: Jobs,
//!     mailer: Mailer,
//! }
//!
//! async fn remind(State(jobs): State<Jobs>, Json(text): Json<String>) -> StatusCode {
//!     match jobs.enqueue(SendReminder { user_id: 7, text }).await {
//!         Ok(_) => StatusCode::ACCEPTED,
//!         Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let mailer = Mailer;
//!     let settings = JobsSettings::load("jobs.toml")?; // the file if present, then JOBS__… vars
//!     let plugin = JobsPlugin::builder(settings).state(mailer.clone()).start().await?;
//!
//!     let app = Router::new()
//!         .route("/reminders", post(remind))
//!         .with_state(AppState { jobs: plugin.jobs(), mailer });
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     axum::serve(listener, app)
//!         .with_graceful_shutdown(plugin.shutdown_signal()) // Ctrl-C or SIGTERM
//!         .await?;
//!     plugin.shutdown().await; // running jobs finish within the grace period, or are released
//!     Ok(())
//! }
//! ```
//!
//! An app whose only state is the client writes `.with_state(plugin.jobs())`. Any state
//! works as long as `Jobs: FromRef<YourState>` (`#[derive(FromRef)]` with the `macros`
//! feature of axum gives that for each field); jobs themselves also receive the client
//! as `State<Jobs>`, to enqueue follow-up work.
//!
//! # The dashboard inside the app
//!
//! Instead of its own port, the dashboard can live under a path of the app: set
//! `dashboard.enabled = false` and nest the router, which needs only
//! `Jobs: FromRef<YourState>`:
//!
//! ```no_run
//! # async fn demo(plugin: jobs_axum::JobsPlugin) {
//! let app: axum::Router = axum::Router::new()
//!     .nest("/jobs", plugin.dashboard_router())
//!     .with_state(plugin.jobs());
//! # }
//! ```
//!
//! # Agent tools
//!
//! [`tool_routes`] serves a [`ToolCatalog`](jobs_core::ToolCatalog) as `GET /tools` and
//! `POST /tools/{name}`. With the `mcp` feature, the `mcp` module serves it as a Model
//! Context Protocol server, over stdio (`mcp::serve_stdio`) and streamable HTTP
//! (`mcp::mcp_routes`).
//!
//! # Settings
//!
//! See [`JobsSettings`] for every key and its default. They can sit in the app's own
//! configuration (e.g. under a `jobs` key), or be loaded on their own:
//! [`JobsSettings::load`] reads a TOML file when it exists and applies `JOBS__…`
//! environment variables over it (`JOBS__DASHBOARD__PORT=9000`). An unknown key or a
//! bad value is an error at boot that names the key.

pub mod dashboard;
mod error;
#[cfg(feature = "mcp")]
pub mod mcp;
mod plugin;
mod settings;
mod tools;

pub use error::Error;
pub use plugin::{JobsPlugin, JobsPluginBuilder};
pub use settings::{
    BackgroundJobServerSettings, DashboardSettings, JobDefaults, JobsSettings, SettingsError,
};
pub use tools::{CALLER_HEADER, tool_routes};
