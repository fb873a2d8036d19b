//! Cross-site request protection for every mutation, and the security headers of every
//! answer.
//!
//! A browser that holds the dashboard's Basic credentials sends them with any request
//! to it, including one a hostile page makes it send. So a request that changes
//! something (any method but `GET`, `HEAD` and `OPTIONS`) must:
//!
//! - carry `X-Jobs-Csrf: 1`. A page on another origin cannot add a custom header
//!   without a CORS preflight, which this router never grants; an HTML form cannot
//!   add one at all. Scripts and `curl` add it like any header.
//! - when the browser says where it comes from, come from the dashboard itself:
//!   `Sec-Fetch-Site` (sent by every current browser) must be `same-origin`; without
//!   it, an `Origin` header must name the host the request was sent to.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::api::ApiError;

/// The header a mutation must carry.
const CSRF_HEADER: &str = "x-jobs-csrf";

/// Scripts and styles come from the dashboard only, never inline; nothing may be
/// framed; and `require-trusted-types-for` makes the browser refuse any string put
/// into the DOM as HTML, should a future change try.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'; require-trusted-types-for 'script'; \
     trusted-types 'none'";

pub(super) async fn refuse_cross_site(request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    match cross_site(request.headers()) {
        Some(reason) => ApiError::coded(
            StatusCode::FORBIDDEN,
            "cross_site",
            format!("cross-site request refused: {reason}"),
        )
        .into_response(),
        None => next.run(request).await,
    }
}

/// Why a mutation looks cross-site, if it does.
fn cross_site(headers: &HeaderMap) -> Option<String> {
    if let Some(site) = headers.get("sec-fetch-site") {
        if site != "same-origin" {
            return Some(format!(
                "Sec-Fetch-Site is {:?}, not \"same-origin\"",
                String::from_utf8_lossy(site.as_bytes())
            ));
        }
    } else if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes());
        let host = headers
            .get(header::HOST)
            .map(|host| String::from_utf8_lossy(host.as_bytes()).to_ascii_lowercase());
        let origin_host = origin
            .split_once("://")
            .map(|(_, authority)| authority.to_ascii_lowercase());
        if origin_host.is_none() || origin_host != host {
            return Some(format!("Origin {origin:?} is not this dashboard's host"));
        }
    }
    if headers
        .get(CSRF_HEADER)
        .is_none_or(|value| value.is_empty())
    {
        return Some(
            "a request that changes something needs the header `X-Jobs-Csrf: 1`".to_owned(),
        );
    }
    None
}

pub(super) async fn add_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
        // Job data is live and may be private: never kept, unless a route says otherwise.
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|&(name, value)| {
                (
                    HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn a_same_origin_request_with_the_header_passes() {
        let fetch = headers(&[("sec-fetch-site", "same-origin"), ("x-jobs-csrf", "1")]);
        assert_eq!(cross_site(&fetch), None);
        let old_browser = headers(&[
            ("origin", "http://127.0.0.1:8000"),
            ("host", "127.0.0.1:8000"),
            ("x-jobs-csrf", "1"),
        ]);
        assert_eq!(cross_site(&old_browser), None);
        let script = headers(&[("x-jobs-csrf", "1")]);
        assert_eq!(cross_site(&script), None);
    }

    #[test]
    fn cross_site_requests_are_refused() {
        for refused in [
            headers(&[("sec-fetch-site", "cross-site"), ("x-jobs-csrf", "1")]),
            headers(&[("sec-fetch-site", "same-site"), ("x-jobs-csrf", "1")]),
            headers(&[
                ("origin", "http://evil.example"),
                ("host", "127.0.0.1:8000"),
                ("x-jobs-csrf", "1"),
            ]),
            headers(&[
                ("origin", "null"),
                ("host", "127.0.0.1:8000"),
                ("x-jobs-csrf", "1"),
            ]),
            headers(&[("sec-fetch-site", "same-origin")]),
            headers(&[]),
        ] {
            assert!(cross_site(&refused).is_some(), "{refused:?}");
        }
    }
}
