#![doc = include_str!("../docs/mcp.md")]

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use jobs_core::{DELETE_TOOL, LIST_TOOL, ToolCatalog};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::{QuitReason, RequestContext};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::Value;

use crate::hosts::refuse_foreign;
use crate::tools::public_error;
use crate::{AllowedHosts, Caller};

/// What the server tells the model about its tools when a client connects.
const INSTRUCTIONS: &str = "Each tool runs one of this application's background jobs: \
     now, once at a later time, or on a cron schedule; two more list and delete the jobs \
     you created. Arguments are checked before anything is stored: a result with isError \
     says which argument is wrong and what it expected, so correct it and call again. \
     Jobs run in the background; a call returns as soon as the job is stored.";

/// Serves the catalog's tools over MCP on this process's stdin and stdout, for
/// `caller`, until the client closes stdin.
///
/// An MCP client launches the process and talks to it over its standard streams, so
/// nothing else may write to stdout: send logs to stderr (`tracing_subscriber::fmt()
/// .with_writer(std::io::stderr)`). Every job a call creates is `caller`'s: it is
/// stored with the job, and the list and delete tools see only that caller's.
///
/// ```no_run
/// # mod jobs { pub use jobs_core::*; pub use jobs_axum as axum; }
/// # #[derive(serde::Serialize, serde::Deserialize)] struct SendReminder;
/// # impl jobs_core::Job for SendReminder {
/// #     type Output = ();
/// #     const DESCRIPTOR: jobs_core::JobDescriptor =
/// #         jobs_core::JobDescriptor::new("r", |_| Box::pin(async { Ok(None) }));
/// #     fn display_name(&self) -> String { String::new() }
/// # }
/// use jobs::{Jobs, ToolCatalog};
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let jobs = Jobs::connect("sqlite://jobs.db").await?;
///     let catalog = ToolCatalog::new(jobs).allow::<SendReminder>();
///     jobs::axum::mcp::serve_stdio(catalog, "desktop-user").await?;
///     Ok(())
/// }
/// ```
pub async fn serve_stdio(
    catalog: ToolCatalog,
    caller: impl Into<String>,
) -> Result<(), ServeError> {
    let caller = caller.into();
    if caller.trim().is_empty() {
        return Err(ServeError::new("the caller must not be blank"));
    }
    let server = JobsMcp {
        catalog,
        caller: caller.into(),
    };
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(ServeError::new)?;
    if let QuitReason::JoinError(error) = running.waiting().await.map_err(ServeError::new)? {
        return Err(ServeError::new(error));
    }
    Ok(())
}

/// `/mcp`, the MCP streamable HTTP endpoint, for any state holding a [`ToolCatalog`]:
/// merge it into the app's router beside [`tool_routes`](crate::tool_routes).
///
/// ```no_run
/// # async fn demo(catalog: jobs_core::ToolCatalog) {
/// let app: axum::Router = axum::Router::new()
///     .merge(jobs_axum::tool_routes())
///     .merge(jobs_axum::mcp::mcp_routes())
///     .with_state(catalog);
/// # }
/// ```
///
/// Each request stands alone (MCP's stateless mode: no session to keep, so any
/// instance of the app can answer it) and gets a JSON answer. Calls are made for the
/// request's [`Caller`], which the app's authentication puts into the
/// request's extensions, as for `tool_routes`; a request without one is refused with
/// 401 and `{"code": "missing_caller", …}`, so a client without credentials fails when
/// it connects, not on its first call. The `X-Caller` header counts only behind
/// [`caller_from_header`](crate::caller_from_header), which the app opts in to.
///
/// The endpoint is for programs, not browsers: a request that carries an `Origin`
/// header (every browser `POST` does) is refused with 403, which is what the MCP
/// specification asks against DNS rebinding. It answers under the loopback names
/// only (`localhost`, `127.0.0.1`, `[::1]`), as [`tool_routes`](crate::tool_routes)
/// does; an app reached under other names serves [`mcp_routes_allowing`].
pub fn mcp_routes<S>() -> Router<S>
where
    ToolCatalog: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    mcp_routes_allowing(AllowedHosts::loopback())
}

/// [`mcp_routes`] answering under the names of `hosts` too.
pub fn mcp_routes_allowing<S>(hosts: AllowedHosts) -> Router<S>
where
    ToolCatalog: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/mcp", any(serve_http))
        .layer(axum::middleware::from_fn_with_state(hosts, refuse_foreign))
}

async fn serve_http(
    State(catalog): State<ToolCatalog>,
    caller: Caller,
    request: Request,
) -> Response {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .disable_allowed_hosts()
        .enforce_origin_validation();
    let server = JobsMcp {
        catalog,
        caller: caller.id().into(),
    };
    // The catalog comes from the app's state, known per request: the service is made
    // for this request, which stateless mode allows at the cost of a few allocations.
    StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    )
    .handle(request)
    .await
    .into_response()
}

/// The MCP server over a catalog, for one caller: the one given at start over stdio,
/// the request's [`Caller`] over HTTP (a server is made per request).
#[derive(Debug, Clone)]
struct JobsMcp {
    catalog: ToolCatalog,
    caller: Arc<str>,
}

impl ServerHandler for JobsMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("jobs", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = self.catalog.tools().into_iter().map(|tool| {
            let schema = match tool.input_schema {
                Value::Object(schema) => schema,
                // The catalog's schemas are objects; an empty one accepts anything.
                _ => serde_json::Map::new(),
            };
            let annotations = annotations(&tool.name);
            Tool::new(tool.name, tool.description, schema).annotate(annotations)
        });
        Ok(ListToolsResult::with_all_items(tools.collect()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let arguments = request.arguments.map_or(Value::Null, Value::Object);
        let result = match self
            .catalog
            .call_tool(&request.name, arguments, &self.caller)
            .await
        {
            Ok(result) => CallToolResult::structured(to_json(&result)?),
            Err(error) => CallToolResult::structured_error(public_error(error)),
        };
        Ok(result.into())
    }
}

fn to_json(value: &impl serde::Serialize) -> Result<Value, ErrorData> {
    serde_json::to_value(value).map_err(|error| ErrorData::internal_error(error.to_string(), None))
}

/// Why [`serve_stdio`] stopped with an error: the caller was blank, stdin closed or
/// failed before the client's `initialize`, or the server's task panicked.
#[derive(Debug, thiserror::Error)]
#[error("MCP server: {0}")]
pub struct ServeError(Box<dyn std::error::Error + Send + Sync>);

impl ServeError {
    fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(error.into())
    }
}

/// What a client may assume of a tool before it calls it: listing changes nothing;
/// deleting removes a job and is safe to repeat; the job tools add a job each call.
fn annotations(name: &str) -> ToolAnnotations {
    match name {
        LIST_TOOL => ToolAnnotations::new().read_only(true),
        DELETE_TOOL => ToolAnnotations::new()
            .read_only(false)
            .destructive(true)
            .idempotent(true)
            .open_world(false),
        _ => ToolAnnotations::new()
            .read_only(false)
            .destructive(false)
            .idempotent(false),
    }
}
