//! What can stop the plugin from booting.

use std::net::SocketAddr;

use crate::SettingsError;

/// Why the plugin did not start. Each message names the setting to look at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is not valid.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The job store could not be opened or migrated.
    #[error("database_url: {0}")]
    Connect(#[source] jobs_core::Error),
    /// The worker server did not start.
    #[error("background_job_server: {0}")]
    Server(#[source] jobs_core::Error),
    /// The standalone dashboard could not listen on its address.
    #[error("dashboard.port: cannot listen on {addr}: {source}")]
    DashboardBind {
        /// The address from `dashboard.bind` and `dashboard.port`.
        addr: SocketAddr,
        /// Why not (often: another process has the port).
        source: std::io::Error,
    },
}
