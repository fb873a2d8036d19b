#![doc = include_str!("../docs/crate.md")]

mod caller;
pub mod dashboard;
mod error;
mod hosts;
#[cfg(feature = "mcp")]
pub mod mcp;
mod plugin;
mod settings;
mod tools;

pub use caller::{CALLER_HEADER, Caller, MissingCaller, caller_from_header};
pub use error::Error;
pub use hosts::AllowedHosts;
pub use plugin::{JobsPlugin, JobsPluginBuilder};
pub use settings::{
    BackgroundJobServerSettings, DashboardSettings, JobDefaults, JobsSettings, SettingsError,
    ToolSettings,
};
pub use tools::{tool_routes, tool_routes_allowing};
