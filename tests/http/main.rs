//! The HTTP side: the axum plugin and its settings, the dashboard (API, live events,
//! recurring jobs, security, a real browser), agent tools over MCP, and the axum
//! example run as a process.

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod axum_example;
mod axum_plugin;
mod axum_settings;
mod axum_settings_server;
mod dashboard_api;
mod dashboard_batches;
mod dashboard_batches_browser;
mod dashboard_browser;
mod dashboard_live;
mod dashboard_plumbing;
mod dashboard_queues;
mod dashboard_queues_browser;
mod dashboard_recurring;
mod dashboard_security;
mod example_scenarios;
mod mcp;
mod security;
mod tool_identity;
