#![doc = include_str!("../docs/crate.md")]

pub mod dashboard;
mod error;
mod hosts;
#[cfg(feature = "mcp")]
pub mod mcp;
mod plugin;
mod settings;
mod tools;

pub use error::Error;
pub use hosts::AllowedHosts;
pub use plugin::{JobsPlugin, JobsPluginBuilder};
pub use settings::{
    BackgroundJobServerSettings, DashboardSettings, JobDefaults, JobsSettings, SettingsError,
};
pub use tools::{CALLER_HEADER, tool_routes, tool_routes_allowing};
