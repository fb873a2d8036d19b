//! The agent tool catalog over HTTP: `GET /tools` lists the tools, `POST /tools/{name}`
//! calls one with the JSON body as its arguments, on behalf of the request's [`Caller`].

use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jobs_core::{Tool, ToolCatalog, ToolError, ToolErrorKind};
use serde_json::Value;

use crate::hosts::refuse_foreign;
use crate::{AllowedHosts, Caller};

/// `GET /tools` and `POST /tools/{name}` for any state holding a [`ToolCatalog`].
///
/// Both answer JSON: the list of tools (`{"name", "description", "input_schema"}`), then
/// a call's result, or its structured error with 422 (bad arguments), 404 (no such
/// tool or job), 429 (a quota of the caller's: `{"error": "quota_exceeded", "quota",
/// "limit", "current", "message"}`) or 500 (the store failed).
///
/// A call is made for the request's [`Caller`], which the app's authentication puts
/// into the request's extensions; without one it is refused with 401
/// `{"code": "missing_caller", …}`. The routes authenticate no one themselves, and read
/// the `X-Caller` header only behind [`caller_from_header`](crate::caller_from_header),
/// which the app adds when whoever sends requests may say who they are for.
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
    caller: Caller,
    Path(name): Path<String>,
    body: Option<Json<Value>>,
) -> Response {
    let arguments = body.map_or(Value::Null, |Json(arguments)| arguments);
    match catalog.call_tool(&name, arguments, caller.id()).await {
        Ok(result) => Json(result).into_response(),
        Err(error) => {
            let status = match error.kind {
                ToolErrorKind::UnknownTool | ToolErrorKind::NotFound => StatusCode::NOT_FOUND,
                ToolErrorKind::QuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
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
