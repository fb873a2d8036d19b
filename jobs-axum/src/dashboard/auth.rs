//! HTTP Basic auth over every dashboard route, when a username and password are set,
//! with failed logins throttled per client address.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jobs_core::Clock;

use super::api::ApiError;
use super::throttle::Throttle;
use crate::DashboardSettings;

/// The `user:password` values a request may present.
struct Credentials {
    /// May do anything.
    full: Option<Vec<u8>>,
    /// May read, not change.
    read_only: Option<Vec<u8>>,
    throttle: Throttle,
}

/// Wraps every route of `routes` in the auth check, if the settings ask for one;
/// failed logins are throttled on `clock`.
pub(super) fn protect<S>(
    routes: Router<S>,
    settings: &DashboardSettings,
    clock: Arc<dyn Clock>,
) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let pair = |username: &Option<String>, password: &Option<String>| match (username, password) {
        (Some(username), Some(password)) => Some(format!("{username}:{password}").into_bytes()),
        _ => None,
    };
    let credentials = Credentials {
        full: pair(&settings.username, &settings.password),
        read_only: pair(&settings.read_only_username, &settings.read_only_password),
        throttle: Throttle::new(clock),
    };
    if credentials.full.is_none() && credentials.read_only.is_none() {
        return routes;
    }
    routes.layer(middleware::from_fn_with_state(
        Arc::new(credentials),
        require,
    ))
}

/// Who the dashboard's credentials say sent a request that may change things: the
/// username of the full credentials it presented. Pauses record it as who paused.
#[derive(Debug, Clone)]
pub(super) struct Operator(pub(super) String);

async fn require(
    State(credentials): State<Arc<Credentials>>,
    mut request: Request,
    next: Next,
) -> Response {
    // Known when the server was started with `ConnectInfo` (the plugin's is); a router
    // nested into an app served without it counts every client as one.
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    if let Some(seconds) = credentials.throttle.wait(address) {
        let mut refusal = ApiError::coded(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!("too many failed logins from this address: try again in {seconds} s"),
        )
        .into_response();
        refusal
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        return refusal;
    }
    let header = request.headers().get(header::AUTHORIZATION);
    let tried = header.is_some();
    let presented = header.and_then(|value| decode_basic(value.as_bytes()));
    let matches = |expected: &Option<Vec<u8>>| {
        presented
            .as_ref()
            .zip(expected.as_ref())
            .is_some_and(|(presented, expected)| constant_time_eq(presented, expected))
    };
    if matches(&credentials.full) {
        credentials.throttle.succeeded(address);
        if let Some(presented) = &presented {
            let username = presented
                .split(|&byte| byte == b':')
                .next()
                .unwrap_or_default();
            let username = String::from_utf8_lossy(username).into_owned();
            request.extensions_mut().insert(Operator(username));
        }
        return next.run(request).await;
    }
    if matches(&credentials.read_only) {
        credentials.throttle.succeeded(address);
        if changes(request.method()) {
            return ApiError::coded(
                StatusCode::FORBIDDEN,
                "read_only",
                "these credentials may view the dashboard, not change anything",
            )
            .into_response();
        }
        return next.run(request).await;
    }
    // A request without credentials is how a browser learns that it needs some.
    if tried {
        credentials.throttle.failed(address);
    }
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Basic realm="jobs dashboard", charset="UTF-8""#),
        )],
        "authentication required\n",
    )
        .into_response()
}

fn changes(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The `user:password` bytes of a `Basic …` header value.
fn decode_basic(value: &[u8]) -> Option<Vec<u8>> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    STANDARD.decode(encoded.trim()).ok()
}

/// Compares without stopping at the first difference, so the time taken does not tell
/// an attacker how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_basic_credentials() {
        let header = format!("Basic {}", STANDARD.encode("admin:s3cret"));
        assert_eq!(decode_basic(header.as_bytes()).unwrap(), b"admin:s3cret");
        let header = format!("basic  {}", STANDARD.encode("admin:"));
        assert_eq!(decode_basic(header.as_bytes()).unwrap(), b"admin:");
        assert_eq!(decode_basic(b"Bearer abc"), None);
        assert_eq!(decode_basic(b"Basic !!!"), None);
    }

    #[test]
    fn compares_whole_values() {
        assert!(constant_time_eq(b"admin:pw", b"admin:pw"));
        assert!(!constant_time_eq(b"admin:pw", b"admin:pW"));
        assert!(!constant_time_eq(b"admin:pw", b"admin:pw2"));
    }
}
