//! `dashboard.*`: where the dashboard listens, who may come in, and what it allows.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::SettingsError;

/// `dashboard.*`: the dashboard and its HTTP API.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DashboardSettings {
    /// Whether the plugin serves the dashboard on its own port (default `true`). An app
    /// that nests [`dashboard::router`](crate::dashboard::router) into its own router
    /// turns this off.
    pub enabled: bool,
    /// The port of the standalone dashboard (default 8000; 0 picks a free one).
    pub port: u16,
    /// The address the standalone dashboard listens on (default `127.0.0.1`, this
    /// machine only; `0.0.0.0` for every interface, which needs credentials or
    /// `protected_upstream`).
    pub bind: IpAddr,
    /// With `password`: HTTP Basic auth on every dashboard route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// With `username`: HTTP Basic auth on every dashboard route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The host names the dashboard answers to besides `localhost`, `127.0.0.1`,
    /// `[::1]` and `bind` (default none): `"jobs.example.com"` on any port, or
    /// `"jobs.example.com:8443"` on that port only. A request under any other name is
    /// refused with 403, so a web page cannot reach the dashboard by re-binding its own
    /// name to this machine. In the environment, names are separated by commas.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
    /// With `read_only_password`: credentials that see every page but change nothing
    /// (a change answers 403 `{"code": "read_only"}`). May be set with or without
    /// `username`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only_username: Option<String>,
    /// With `read_only_username`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only_password: Option<String>,
    /// Says that something in front of the dashboard authenticates every request (an
    /// authenticating proxy, the app's own auth layer), so it may answer beyond this
    /// machine, or be nested into the app's router, without credentials of its own
    /// (default `false`: without credentials, a dashboard bound beyond loopback, given
    /// `allowed_hosts`, or nested refuses to start).
    pub protected_upstream: bool,
    /// The most live-update streams (open dashboard tabs) served at once (default 64);
    /// past it, `GET /api/events` answers 503 `{"code": "too_many_streams"}`.
    pub max_event_streams: usize,
    /// The database connections the dashboard reads through, a pool of its own beside
    /// the job server's (default 2), so that open dashboards never take the connections
    /// claims and heartbeats need. Used by the plugin's dashboard, standalone or nested.
    pub pool_size: u32,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            port: 8000,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            username: None,
            password: None,
            allowed_hosts: Vec::new(),
            read_only_username: None,
            read_only_password: None,
            protected_upstream: false,
            max_event_streams: 64,
            pool_size: 2,
        }
    }
}

impl DashboardSettings {
    /// Where the standalone dashboard listens.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    /// Who may come in, as the log line at start says it.
    pub(crate) fn access(&self) -> &'static str {
        match (
            self.username.is_some(),
            self.read_only_username.is_some(),
            self.protected_upstream,
        ) {
            (true, true, _) => "Basic auth, with read-only credentials too",
            (true, false, _) => "Basic auth",
            (false, true, _) => "read-only Basic auth: nothing can be changed",
            (false, false, true) => {
                "no credentials of its own: dashboard.protected_upstream says something in \
                 front authenticates"
            }
            (false, false, false) => "no credentials: this machine only",
        }
    }

    /// Refuses a dashboard that anyone beyond this machine could reach without
    /// credentials, unless `protected_upstream` says something in front authenticates.
    pub(crate) fn check_exposure(&self, mount: Mount) -> Result<(), SettingsError> {
        if self.username.is_some() || self.read_only_username.is_some() || self.protected_upstream {
            return Ok(());
        }
        let remedy = "set dashboard.username and dashboard.password (or \
                      dashboard.read_only_username and dashboard.read_only_password), or \
                      dashboard.protected_upstream = true when an authenticating proxy or the \
                      app's own auth stands in front of it";
        let (key, why) = match mount {
            Mount::Nested => (
                "dashboard.protected_upstream",
                "the dashboard is nested into the app's router, which may be public, without \
                 credentials"
                    .to_owned(),
            ),
            Mount::Standalone if !self.bind.is_loopback() => (
                "dashboard.bind",
                format!(
                    "the dashboard would listen on {} without credentials",
                    self.bind
                ),
            ),
            Mount::Standalone if !self.allowed_hosts.is_empty() => (
                "dashboard.allowed_hosts",
                "the dashboard would answer under public names without credentials".to_owned(),
            ),
            Mount::Standalone => return Ok(()),
        };
        Err(SettingsError::invalid(key, format!("{why}: {remedy}")))
    }
}

/// Where the dashboard's routes are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mount {
    /// On the plugin's own port.
    Standalone,
    /// Inside the app's router.
    Nested,
}

/// Hides the password.
impl fmt::Debug for DashboardSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DashboardSettings")
            .field("enabled", &self.enabled)
            .field("port", &self.port)
            .field("bind", &self.bind)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("allowed_hosts", &self.allowed_hosts)
            .field("read_only_username", &self.read_only_username)
            .field(
                "read_only_password",
                &self.read_only_password.as_ref().map(|_| "***"),
            )
            .field("protected_upstream", &self.protected_upstream)
            .field("max_event_streams", &self.max_event_streams)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}
