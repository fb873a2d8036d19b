//! Who an agent tool call is for, as the application's own authentication says.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The header [`caller_from_header`] reads, for apps that opt in to it.
pub const CALLER_HEADER: &str = "x-caller";

/// Who a tool call is for: the id of a user, a conversation or a tenant, as the
/// application's own authentication established it. [`tool_routes`](crate::tool_routes)
/// and `mcp::mcp_routes` take it from the request's extensions, where the app's auth
/// middleware puts it; a request without one is refused with 401
/// `{"code": "missing_caller", "error": "…"}` before the catalog sees it.
///
/// Every job and recurring job a call creates stores this id exactly, and the list and
/// delete tools see only the rows whose stored id is equal to it: `org:42` never sees
/// the rows of `org:42:user:7`. So make it a stable id the app issued (a user's primary
/// key, a conversation's id), not a name anyone can choose.
///
/// ```
/// use axum::extract::Request;
/// use axum::http::StatusCode;
/// use axum::middleware::{self, Next};
/// use axum::response::Response;
/// use axum::Router;
/// use jobs_axum::Caller;
///
/// /// The app's own check: a session cookie, a bearer token, mTLS…
/// fn user_id(request: &Request) -> Option<u64> {
///     # let _ = request; Some(7)
/// }
///
/// async fn authenticate(mut request: Request, next: Next) -> Result<Response, StatusCode> {
///     let user = user_id(&request).ok_or(StatusCode::UNAUTHORIZED)?;
///     request.extensions_mut().insert(Caller::new(format!("user:{user}")));
///     Ok(next.run(request).await)
/// }
///
/// # fn app(catalog: jobs_core::ToolCatalog) -> Router {
/// Router::new()
///     .merge(jobs_axum::tool_routes())
///     .layer(middleware::from_fn(authenticate))
///     .with_state(catalog)
/// # }
/// ```
///
/// A handler of the app's own takes it as an extractor, like any other.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Caller(Arc<str>);

impl Caller {
    /// The caller `id`. A blank id counts as no caller: the routes refuse it.
    pub fn new(id: impl Into<String>) -> Self {
        Self(Arc::from(id.into()))
    }

    /// The id, as stored with the caller's jobs.
    pub fn id(&self) -> &str {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = MissingCaller;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, MissingCaller> {
        parts
            .extensions
            .get::<Caller>()
            .filter(|caller| !caller.0.trim().is_empty())
            .cloned()
            .ok_or(MissingCaller)
    }
}

/// A request without a [`Caller`]: answered 401 `{"code": "missing_caller", "error": "…"}`.
#[derive(Debug, Clone, Copy)]
pub struct MissingCaller;

impl IntoResponse for MissingCaller {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "code": "missing_caller",
            "error": "the request is not authenticated: no caller to act for",
        });
        (StatusCode::UNAUTHORIZED, Json(body)).into_response()
    }
}

/// Middleware that trusts the `X-Caller` header: a request that has no [`Caller`] yet
/// gets one from the header's non-blank value.
///
/// Anyone who can reach the routes can then act as any caller, so use it only where
/// whoever sends the request is trusted to say who it is for: a backend calling its own
/// agent service on a private network, a local tool, a test. An app with users
/// authenticates them and inserts the [`Caller`] itself. A [`Caller`] inserted by a
/// layer that ran first is kept.
///
/// ```
/// # fn app(catalog: jobs_core::ToolCatalog) -> axum::Router {
/// axum::Router::new()
///     .merge(jobs_axum::tool_routes())
///     .layer(axum::middleware::from_fn(jobs_axum::caller_from_header))
///     .with_state(catalog)
/// # }
/// ```
pub async fn caller_from_header(mut request: Request, next: Next) -> Response {
    if request.extensions().get::<Caller>().is_none() {
        let header = request
            .headers()
            .get(CALLER_HEADER)
            .and_then(|value| value.to_str().ok())
            .filter(|value| !value.trim().is_empty())
            .map(Caller::new);
        if let Some(caller) = header {
            request.extensions_mut().insert(caller);
        }
    }
    next.run(request).await
}
