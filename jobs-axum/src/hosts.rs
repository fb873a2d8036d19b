//! Which names the library's routes answer to, and from which pages they take changes.
//!
//! A page on any website can make the browser of someone on this machine re-bind the
//! page's own name to 127.0.0.1 (DNS rebinding). To the browser the requests that
//! follow are same-origin: they carry whatever headers the page likes, to a dashboard
//! on localhost. What they cannot change is the name they were sent to: `Host` (or
//! HTTP/2's `:authority`) is the page's name, not one this machine serves. So every
//! request under a name that is not allowed is refused before anything reads it.
//!
//! Browsers send `Origin` with every `POST`, `PUT`, `PATCH` and `DELETE`, cross-site or
//! not; a change that carries one must come from a page under an allowed name. One
//! without it comes from a program (`curl`, a script), which the other checks of each
//! route handle.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::DashboardSettings;

/// The host names a router answers to: the loopback names (`localhost`, `127.0.0.1`,
/// `[::1]`) on any port, plus those added. Built from the dashboard's settings by
/// [`from_settings`](Self::from_settings), or by hand for
/// [`tool_routes_allowing`](crate::tool_routes_allowing).
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    names: Arc<[Allowed]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    /// Lowercase, IPv6 addresses in brackets.
    name: String,
    /// `None`: any port.
    port: Option<u16>,
}

impl AllowedHosts {
    /// The loopback names on any port, nothing else.
    pub fn loopback() -> Self {
        Self {
            names: LOOPBACK
                .iter()
                .map(|name| Allowed {
                    name: (*name).to_owned(),
                    port: None,
                })
                .collect(),
        }
    }

    /// The loopback names, `dashboard.bind` when it is one address (not `0.0.0.0` or
    /// `::`), and `dashboard.allowed_hosts`.
    pub fn from_settings(settings: &DashboardSettings) -> Self {
        let bind = (!settings.bind.is_unspecified()).then(|| match settings.bind {
            IpAddr::V4(address) => address.to_string(),
            IpAddr::V6(address) => format!("[{address}]"),
        });
        bind.iter()
            .chain(&settings.allowed_hosts)
            .fold(Self::loopback(), |hosts, name| hosts.allow(name))
    }

    /// Also answers to `host`: a name (`jobs.example.com`, any port) or a name and port
    /// (`jobs.example.com:8443`, that port only). A value that is not a host name
    /// matches no request; [`check`](Self::check) says why.
    #[must_use]
    pub fn allow(self, host: &str) -> Self {
        let Ok(allowed) = parse(host) else {
            return self;
        };
        let mut names = self.names.to_vec();
        if !names.contains(&allowed) {
            names.push(allowed);
        }
        Self {
            names: names.into(),
        }
    }

    /// Why `host` is not a host name or `name:port` that [`allow`](Self::allow) takes.
    pub fn check(host: &str) -> Result<(), String> {
        parse(host).map(drop)
    }

    /// Whether a `Host` value (`name` or `name:port`) is one of these.
    pub fn allows(&self, host: &str) -> bool {
        parse(host).is_ok_and(|host| {
            self.names.iter().any(|allowed| {
                allowed.name == host.name && allowed.port.is_none_or(|port| host.port == Some(port))
            })
        })
    }

    /// Whether an `Origin` value (`scheme://name[:port]`) is a page under one of these.
    fn allows_origin(&self, origin: &str) -> bool {
        let Some((scheme, authority)) = origin.split_once("://") else {
            return false;
        };
        matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") && self.allows(authority)
    }
}

const LOOPBACK: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// `name[:port]`, lowercased, without a trailing dot.
fn parse(host: &str) -> Result<Allowed, String> {
    let host = host.trim().to_ascii_lowercase();
    let not_a_host = || {
        format!(
            "{host:?} is not a host name (such as `jobs.example.com`, with `:port` to allow \
             one port only; no scheme, no path)"
        )
    };
    if host.contains('/') {
        return Err(not_a_host());
    }
    let (name, port) = if host.starts_with('[') {
        let end = host.find(']').ok_or_else(|| {
            format!("{host:?} opens an IPv6 address with `[` but never closes it")
        })?;
        let (name, rest) = host.split_at(end + 1);
        match rest.strip_prefix(':') {
            Some(port) => (name.to_owned(), Some(port)),
            None if rest.is_empty() => (name.to_owned(), None),
            None => return Err(format!("{host:?} has {rest:?} after its address")),
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name.to_owned(), Some(port)),
            None => (host.clone(), None),
        }
    };
    let name = name.strip_suffix('.').unwrap_or(&name).to_owned();
    let port = port
        .map(|port| {
            port.parse::<u16>()
                .map_err(|_| format!("{host:?} has a port that is not a number up to 65535"))
        })
        .transpose()?;
    let valid = if let Some(address) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        address.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
            })
    };
    if !valid {
        return Err(not_a_host());
    }
    Ok(Allowed { name, port })
}

/// The middleware: refuses a request under a name not allowed, and a change from a
/// page under such a name. Both with 403 and nothing read or changed.
pub(crate) async fn refuse_foreign(
    State(hosts): State<AllowedHosts>,
    request: Request,
    next: Next,
) -> Response {
    match foreign(&hosts, request.method(), request.uri(), request.headers()) {
        Some(refusal) => refusal.into_response(),
        None => next.run(request).await,
    }
}

/// Why a request must be refused, if it must.
fn foreign(
    hosts: &AllowedHosts,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Option<Refusal> {
    let host = headers
        .get(header::HOST)
        .map(|host| String::from_utf8_lossy(host.as_bytes()).into_owned())
        .or_else(|| uri.authority().map(ToString::to_string));
    let Some(host) = host else {
        return Some(Refusal::host(
            "a request must say which host it is for (`Host`)",
        ));
    };
    if !hosts.allows(&host) {
        return Some(Refusal::host(format!(
            "the host {host:?} is not one these routes answer to: add it to \
             dashboard.allowed_hosts"
        )));
    }
    let changes = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if changes && let Some(origin) = headers.get(header::ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes());
        if !hosts.allows_origin(&origin) {
            return Some(Refusal {
                code: "cross_site",
                message: format!(
                    "cross-site request refused: Origin {origin:?} is not a page of an \
                     allowed host"
                ),
            });
        }
    }
    None
}

/// A refused request, answered `403 {"code": …, "error": …}`.
struct Refusal {
    code: &'static str,
    message: String,
}

impl Refusal {
    fn host(message: impl Into<String>) -> Self {
        Self {
            code: "host_not_allowed",
            message: message.into(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "code": self.code, "error": self.message });
        (StatusCode::FORBIDDEN, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_on_any_port_and_nothing_else() {
        let hosts = AllowedHosts::loopback();
        for allowed in [
            "localhost",
            "localhost:8000",
            "LOCALHOST:1",
            "127.0.0.1:9",
            "[::1]:8000",
            "[::1]",
            "localhost.",
        ] {
            assert!(hosts.allows(allowed), "{allowed}");
        }
        for refused in [
            "evil.example:8000",
            "localhost.evil.example",
            "127.0.0.2:8000",
            "[::2]:8000",
            "localhost:99999",
            "localhost:8000:1",
            "",
            "local host",
        ] {
            assert!(!hosts.allows(refused), "{refused}");
        }
    }

    #[test]
    fn added_names_match_any_port_or_the_one_given() {
        let hosts = AllowedHosts::loopback()
            .allow("Jobs.Example.com")
            .allow("ops.example.com:8443")
            .allow("[2001:db8::1]");
        assert!(hosts.allows("jobs.example.com:80"));
        assert!(hosts.allows("ops.example.com:8443"));
        assert!(!hosts.allows("ops.example.com:8000"));
        assert!(!hosts.allows("ops.example.com"));
        assert!(hosts.allows("[2001:db8::1]:8000"));
        assert!(hosts.allows_origin("https://jobs.example.com"));
        assert!(!hosts.allows_origin("null"));
        assert!(!hosts.allows_origin("ftp://jobs.example.com"));
        for bad in [
            "http://jobs.example.com",
            "jobs.example.com/x",
            "[::1",
            "a..b",
            "*",
        ] {
            assert!(AllowedHosts::check(bad).is_err(), "{bad}");
        }
    }
}
