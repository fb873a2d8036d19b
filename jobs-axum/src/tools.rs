//! The agent tool catalog over HTTP: `GET /tools` lists the tools, `POST /tools/{name}`
//! calls one with the JSON body as its arguments, on behalf of the `X-Caller` header.

use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jobs_core::{Tool, ToolCatalog, ToolError, ToolErrorKind};
use serde_json::Value;

use crate::AllowedHosts;
use crate::hosts::refuse_foreign;

/// The header naming who asks (a user or conversation id), recorded on each job as the
/// label `caller:<id>`.
pub const CALLER_HEADER: &str = "x-caller";

/// `GET /tools` and `POST /tools/{name}` for any state holding a [`ToolCatalog`].
///
/// Both answer JSON: the list of tools (`{"name", "description", "input_schema"}`), then
/// a call's result, or its structured error with 422 (bad arguments), 404 (no such
/// tool or job) or 500 (the store failed). A call without `X-Caller` is refused with 400,
/// so every job a tool call creates says who asked.
///
/// They answer under the loopback names only (`localhost`, `127.0.0.1`, `[::1]`): a
/// request under another `Host`, or a call from a web page under another name
/// (`Origin`), is refused with 403 `{"code": "host_not_allowed" | "cross_site", …}`.
/// An app reached under other names serves [`tool_routes_allowing`] instead.
pub fn tool_routes<S>() -> Router<S>
where
    ToolCatalog: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    tool_routes_allowing(AllowedHosts::loopback())
}

/// [`tool_routes`] answering under the names of `hosts` too.
pub fn tool_routes_allowing<S>(hosts: AllowedHosts) -> Router<S>
where
    ToolCatalog: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/tools", get(list_tools))
        .route("/tools/{name}", post(call_tool))
        .layer(middleware::from_fn_with_state(hosts, refuse_foreign))
}

async fn list_tools(State(catalog): State<ToolCatalog>) -> Json<Vec<Tool>> {
    Json(catalog.tools())
}

async fn call_tool(
    State(catalog): State<ToolCatalog>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    let Some(caller) = caller(&headers) else {
        return missing_caller();
    };
    let arguments = body.map_or(Value::Null, |Json(arguments)| arguments);
    match catalog.call_tool(&name, arguments, caller).await {
        Ok(result) => Json(result).into_response(),
        Err(error) => {
            let status = match error.kind {
                ToolErrorKind::UnknownTool | ToolErrorKind::NotFound => StatusCode::NOT_FOUND,
                ToolErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            (status, Json(public_error(error))).into_response()
        }
    }
}

/// A tool error as the caller sees it. A store failure shows no database text: its
/// detail goes to the log under an error id, which the answer carries (`"id"`).
pub(crate) fn public_error(mut error: ToolError) -> Value {
    let id = (error.kind == ToolErrorKind::Internal).then(|| {
        let id = uuid::Uuid::now_v7().to_string();
        tracing::error!(error = %error.message, error_id = %id, "tool call failed");
        error.message =
            format!("the job store failed; the server's log says why, under error id {id}");
        id
    });
    let mut value = serde_json::to_value(&error).unwrap_or(Value::Null);
    if let (Some(id), Some(object)) = (id, value.as_object_mut()) {
        object.insert("id".to_owned(), Value::String(id));
    }
    value
}

/// The non-blank `X-Caller` of a request.
pub(crate) fn caller(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(CALLER_HEADER)
        .and_then(|caller| caller.to_str().ok())
        .filter(|caller| !caller.trim().is_empty())
}

/// 400 for a request that does not say who asks.
pub(crate) fn missing_caller() -> Response {
    let error = serde_json::json!({
        "error": "missing_caller",
        "message": "set the X-Caller header to the user or conversation the call is for",
    });
    (StatusCode::BAD_REQUEST, Json(error)).into_response()
}
