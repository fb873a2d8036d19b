//! The tool catalog as an MCP server, driven by a real MCP client: over streamable HTTP
//! against `mcp_routes` served here, and over stdio against the `agent_tools` example
//! launched as a process. Each lists the tools, calls one and finds exactly that job
//! stored, labelled with who asked; a bad call is a tool error and stores nothing.

#![cfg(all(feature = "mcp", unix))]

use std::collections::HashMap;

use crate::support::example_binary::build_example;
use crate::support::http::Http;
use crate::support::{Backend, TestDb, start_time, stored_jobs};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use jobs::prelude::*;
use jobs::{JobState, Jobs, ManualClock, ToolCatalog};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

backend_tests!(
    http_lists_and_calls_tools,
    http_bad_calls_are_tool_errors,
    stdio_lists_and_calls_tools,
);

/// Analyzes a document.
#[job]
async fn analyze_document(
    /// The document's id.
    document_id: u64,
) {
    let _ = document_id;
}

/// Reminds a user of something.
#[job]
async fn send_reminder(user_id: u64, text: String) {
    let _ = (user_id, text);
}

async fn setup(backend: Backend) -> (TestDb, Jobs) {
    let db = TestDb::new(backend).await;
    let jobs = db.jobs(&ManualClock::new(start_time())).await;
    (db, jobs)
}

fn catalog(jobs: &Jobs) -> ToolCatalog {
    ToolCatalog::new(jobs.clone())
        .allow::<AnalyzeDocument>()
        .allow::<SendReminder>()
}

/// Serves `mcp_routes` over `catalog` on a free port; returns the endpoint's URL.
async fn serve(catalog: ToolCatalog) -> String {
    serve_routes(jobs::axum::mcp::mcp_routes().with_state(catalog)).await
}

/// The client says who it calls for in `X-Caller`, which these routes trust.
async fn serve_routes(routes: axum::Router) -> String {
    let routes = routes.layer(axum::middleware::from_fn(jobs::axum::caller_from_header));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, routes).await.unwrap() });
    url
}

type Client = RunningService<RoleClient, ()>;

/// An MCP client connected over streamable HTTP, sending `X-Caller: caller` if given.
async fn connect_http(url: &str, caller: Option<&str>) -> Result<Client, String> {
    let headers: HashMap<HeaderName, HeaderValue> = caller
        .map(|caller| {
            (
                HeaderName::from_static("x-caller"),
                HeaderValue::from_str(caller).unwrap(),
            )
        })
        .into_iter()
        .collect();
    let config = StreamableHttpClientTransportConfig::with_uri(url).custom_headers(headers);
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .map_err(|error| error.to_string())
}

async fn call(client: &Client, tool: &str, arguments: Value) -> CallToolResult {
    let Value::Object(arguments) = arguments else {
        panic!("arguments are an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
        .unwrap_or_else(|error| panic!("{tool} answers: {error}"))
}

/// The JSON a tool result carries, checking that its text says the same.
fn json_of(result: &CallToolResult) -> Value {
    let structured = result
        .structured_content
        .clone()
        .expect("structured content");
    let text = result.content[0].as_text().expect("text content");
    assert_eq!(
        serde_json::from_str::<Value>(&text.text).unwrap(),
        structured
    );
    structured
}

/// Runs `run_analyze_document` and checks the stored job: exactly these arguments,
/// labelled for `caller`.
async fn call_and_check_the_job(client: &Client, jobs: &Jobs, caller: &str) {
    let result = call(client, "run_analyze_document", json!({"document_id": 42})).await;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    let answer = json_of(&result);
    assert_eq!(answer["result"], "enqueued", "{answer:#}");
    let id = answer["job_id"].as_str().unwrap().parse().unwrap();
    let job = jobs.get(id).await.unwrap();
    assert!(job.name.ends_with("analyze_document"), "{}", job.name);
    assert_eq!(job.payload, json!({"document_id": 42}));
    assert_eq!(
        job.labels,
        ["tool-call".to_owned(), format!("caller:{caller}")]
    );
    assert_eq!(job.state, JobState::Enqueued);
}

/// Calls the catalog refuses, each answered as a tool error with the structured
/// `ToolError`, and nothing stored.
async fn bad_calls(client: &Client, jobs: &Jobs) {
    for (tool, arguments, error, field) in [
        (
            "run_analyze_document",
            json!({"document_id": "seven"}),
            "invalid_arguments",
            Some("/document_id"),
        ),
        (
            "run_analyze_document",
            json!({"document_id": 7, "urgent": true}),
            "invalid_arguments",
            Some("/urgent"),
        ),
        (
            "schedule_send_reminder",
            json!({"user_id": 7, "text": "Hi", "delay_seconds": 400 * 86_400}),
            "too_far_ahead",
            Some("/delay_seconds"),
        ),
        ("run_delete_everything", json!({}), "unknown_tool", None),
    ] {
        let result = call(client, tool, arguments.clone()).await;
        assert_eq!(
            result.is_error,
            Some(true),
            "{tool}({arguments}): {result:?}"
        );
        let answer = json_of(&result);
        assert_eq!(answer["error"], error, "{tool}({arguments}): {answer:#}");
        assert_eq!(answer["field"].as_str(), field, "{answer:#}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(stored_jobs(jobs).await, 0);
}

async fn http_lists_and_calls_tools(backend: Backend) {
    let (_db, jobs) = setup(backend).await;
    let catalog = catalog(&jobs);
    let url = serve(catalog.clone()).await;
    let client = connect_http(&url, Some("conversation-7")).await.unwrap();

    let info = client.peer_info().expect("the server introduced itself");
    let server = info.server_info.as_ref().expect("server info");
    assert_eq!(server.name, "jobs");
    assert_eq!(server.version, env!("CARGO_PKG_VERSION"));
    assert!(info.capabilities.tools.is_some());
    assert!(
        info.instructions
            .as_deref()
            .is_some_and(|text| !text.is_empty())
    );

    // Exactly the catalog's tools, as the catalog describes them.
    let tools = client.list_all_tools().await.expect("tools/list");
    let expected = catalog.tools();
    assert_eq!(tools.len(), expected.len());
    for (tool, expected) in tools.iter().zip(&expected) {
        assert_eq!(tool.name, expected.name);
        assert_eq!(
            tool.description.as_deref(),
            Some(expected.description.as_str())
        );
        assert_eq!(
            Value::Object((*tool.input_schema).clone()),
            expected.input_schema
        );
        // Hints for clients that ask before a call with effects.
        let hints = tool.annotations.as_ref().expect("annotations");
        let (read_only, destructive) = match tool.name.as_ref() {
            "list_recurring_jobs" => (Some(true), None),
            "delete_job" => (Some(false), Some(true)),
            _ => (Some(false), Some(false)),
        };
        assert_eq!(
            (hints.read_only_hint, hints.destructive_hint),
            (read_only, destructive),
            "{}",
            tool.name
        );
    }

    call_and_check_the_job(&client, &jobs, "conversation-7").await;
    assert_eq!(stored_jobs(&jobs).await, 1);
    client.cancel().await.unwrap();
}

async fn http_bad_calls_are_tool_errors(backend: Backend) {
    let (_db, jobs) = setup(backend).await;
    let url = serve(catalog(&jobs)).await;
    let client = connect_http(&url, Some("conversation-7")).await.unwrap();
    bad_calls(&client, &jobs).await;
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_without_a_caller_is_refused() {
    let (_db, jobs) = setup(Backend::Sqlite).await;
    let url = serve(catalog(&jobs)).await;

    // The client fails to connect, and says why.
    let Err(error) = connect_http(&url, None).await else {
        panic!("a client without X-Caller connected")
    };
    assert!(error.contains("401"), "{error}");
    assert!(error.contains("missing_caller"), "{error}");

    let http = Http::new();
    let reply = http.post(&url, initialize()).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["code"], "missing_caller");
    assert_eq!(stored_jobs(&jobs).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_refuses_browsers_and_foreign_hosts() {
    let (_db, jobs) = setup(Backend::Sqlite).await;
    let url = serve(catalog(&jobs)).await;
    let http = Http::new()
        .with_header("x-caller", "c")
        .with_header("accept", "application/json, text/event-stream");

    // A page the browser was led to, even one on this very address, sends `Origin`.
    let browser = http.with_header("origin", &url.replace("/mcp", ""));
    let reply = browser.post(&url, initialize()).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);

    // A name the routes were not told about is refused: it may be a page's own name,
    // re-bound to this machine.
    let named = http.with_header("host", "jobs.example.com");
    let reply = named.post(&url, initialize()).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert_eq!(reply.json()["code"], "host_not_allowed");

    // A program under the app's public name is answered once the name is allowed.
    let hosts = jobs::axum::AllowedHosts::loopback().allow("jobs.example.com");
    let public =
        serve_routes(jobs::axum::mcp::mcp_routes_allowing(hosts).with_state(catalog(&jobs))).await;
    let reply = named.post(&public, initialize()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["result"]["serverInfo"]["name"], "jobs");

    let reply = http.send(Method::GET, &url, None).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
}

fn initialize() -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    })
}

/// The `agent_tools` example serving MCP on stdio for `stdio-user`, on the test's
/// database, as an MCP client launches it.
async fn stdio_lists_and_calls_tools(backend: Backend) {
    let (db, jobs) = setup(backend).await;
    let binary = build_example("agent_tools");
    let mut command = tokio::process::Command::new(binary);
    command
        .args(["--mcp-stdio", "--caller", "stdio-user"])
        .env("JOBS__DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn");
    let client = ().serve(TokioChildProcess::new(command).unwrap()).await.unwrap();
    let info = client.peer_info().unwrap();
    assert_eq!(info.server_info.as_ref().unwrap().name, "jobs");

    // The example's catalog: its three jobs, one of them recurring.
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            "run_send_reminder",
            "schedule_send_reminder",
            "run_summarize_inbox",
            "schedule_summarize_inbox",
            "schedule_summarize_inbox_recurring",
            "run_analyze_document",
            "schedule_analyze_document",
            "list_recurring_jobs",
            "delete_job",
        ]
    );
    let analyze = &tools[5];
    assert_eq!(
        analyze.input_schema["properties"]["document_id"]["description"],
        "The document's id."
    );
    call_and_check_the_job(&client, &jobs, "stdio-user").await;

    let result = call(&client, "run_analyze_document", json!({"document_id": -1})).await;
    assert_eq!(result.is_error, Some(true));
    assert_eq!(json_of(&result)["field"], "/document_id");

    let listed = call(&client, "list_recurring_jobs", json!({})).await;
    assert_eq!(json_of(&listed)["jobs"].as_array().map(Vec::len), Some(1));
    assert_eq!(stored_jobs(&jobs).await, 1);
    client.cancel().await.unwrap();
}
