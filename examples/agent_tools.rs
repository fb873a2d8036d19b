//! Jobs as agent tools: the catalog a model is handed, and a recorded conversation's tool
//! calls replayed against it — no network, no real model.
//!
//! ```sh
//! cargo run --example agent_tools          # replays the calls, prints each result
//! SERVE=1 cargo run --example agent_tools  # then serves the catalog on :3000
//! curl localhost:3000/tools
//! curl -X POST localhost:3000/tools/run_analyze_document -H 'x-caller: me' \
//!      -H 'content-type: application/json' -d '{"document_id": 7}'
//! ```
//!
//! Served here, the routes take the caller from the `X-Caller` header
//! (`caller_from_header`): fine on this machine, where whoever calls is you. An app
//! with users authenticates them and puts a `jobs::axum::Caller` into each request
//! instead, so that nobody acts for another by naming them.
//!
//! The fourth call is malformed (`user_id: "seven"`): the catalog stores nothing and
//! answers with the field, what it expected and what it got, for the model to retry.
//!
//! With the `mcp` feature the same catalog is a Model Context Protocol server: at
//! `http://127.0.0.1:3000/mcp` beside `/tools` under `SERVE=1`, or on stdio for a
//! client that launches it, storing its jobs in `JOBS__DATABASE_URL`
//! (`sqlite://agent_tools.db` by default) on behalf of `--caller`:
//!
//! ```sh
//! cargo run --example agent_tools --features mcp -- --mcp-stdio --caller me
//! ```

use jobs::prelude::*;
use jobs::{Jobs, ToolCatalog};
use serde_json::{Value, json};

/// Reminds a user of something at the time they asked for.
#[job(display = "Remind {user_id}: {text}")]
async fn send_reminder(
    /// The user to remind.
    user_id: u64,
    /// What to remind them of, in their words.
    text: String,
) {
    println!("reminding {user_id}: {text}");
}

/// Summarizes a user's unread mail and sends them the summary.
#[job]
async fn summarize_inbox(
    /// Whose inbox.
    user_id: u64,
) {
    println!("summarizing the inbox of {user_id}");
}

/// Analyzes a document: summary, key points and entities.
#[job]
async fn analyze_document(
    /// The document's id.
    document_id: u64,
) {
    println!("analyzing document {document_id}");
}

/// What the model answered in a recorded conversation: the user's words, then the tool
/// call it made for them. `TOMORROW` stands for tomorrow's date, filled in at replay.
const RECORDED_CALLS: &str = r#"[
  {"user": "remind me tomorrow at 10 to call the bank",
   "tool": "schedule_send_reminder",
   "arguments": {"user_id": 7, "text": "Call the bank", "at": "TOMORROWT10:00:00+01:00"}},
  {"user": "every morning at 8 summarize my inbox",
   "tool": "schedule_summarize_inbox_recurring",
   "arguments": {"user_id": 7, "cron": "0 8 * * *", "zone": "Europe/Brussels"}},
  {"user": "analyze document 42",
   "tool": "run_analyze_document",
   "arguments": {"document_id": 42}},
  {"user": "remind user seven to stretch in an hour",
   "tool": "schedule_send_reminder",
   "arguments": {"user_id": "seven", "text": "Stretch", "delay_seconds": 3600}}
]"#;

/// The jobs the model may call.
fn catalog(jobs: Jobs) -> ToolCatalog {
    ToolCatalog::new(jobs)
        .allow::<SendReminder>()
        .allow_recurring::<SummarizeInbox>()
        .allow::<AnalyzeDocument>()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--mcp-stdio") {
        return serve_mcp_stdio(&args).await;
    }
    let dir = tempfile::tempdir()?;
    let jobs = Jobs::connect(&format!(
        "sqlite://{}",
        dir.path().join("jobs.db").display()
    ))
    .await?;
    let catalog = catalog(jobs);

    println!("The model is offered {} tools:", catalog.tools().len());
    for tool in catalog.tools() {
        println!("  {}: {}", tool.name, tool.description);
    }

    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).date_naive();
    let recorded = RECORDED_CALLS.replace("TOMORROW", &tomorrow.to_string());
    let calls: Vec<Value> = serde_json::from_str(&recorded)?;
    for call in calls {
        let tool = call["tool"].as_str().unwrap_or_default();
        println!("\nuser:  {}", call["user"]);
        println!("model: {tool}({})", call["arguments"]);
        let answer = match catalog
            .call_tool(tool, call["arguments"].clone(), "conversation-1")
            .await
        {
            Ok(result) => serde_json::to_value(result)?,
            Err(error) => serde_json::to_value(error)?,
        };
        println!("tool:  {}", serde_json::to_string_pretty(&answer)?);
    }

    let listed = catalog
        .call_tool("list_recurring_jobs", json!({}), "conversation-1")
        .await?;
    println!(
        "\nlist_recurring_jobs: {}",
        serde_json::to_string_pretty(&listed)?
    );

    if std::env::var_os("SERVE").is_some() {
        let routes = jobs::axum::tool_routes();
        #[cfg(feature = "mcp")]
        let routes = routes.merge(jobs::axum::mcp::mcp_routes());
        let routes = routes.layer(axum::middleware::from_fn(jobs::axum::caller_from_header));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
        println!("\nserving GET /tools and POST /tools/{{name}} on http://127.0.0.1:3000");
        if cfg!(feature = "mcp") {
            println!("and MCP on http://127.0.0.1:3000/mcp (with an X-Caller header)");
        }
        axum::serve(listener, routes.with_state(catalog)).await?;
    }
    Ok(())
}

/// Serves the catalog over MCP on stdin and stdout until the client closes stdin.
/// Stdout carries the protocol, so this prints nothing.
#[cfg(feature = "mcp")]
async fn serve_mcp_stdio(args: &[String]) -> anyhow::Result<()> {
    let caller = args
        .iter()
        .skip_while(|arg| *arg != "--caller")
        .nth(1)
        .map_or("local", String::as_str);
    let url = std::env::var("JOBS__DATABASE_URL")
        .unwrap_or_else(|_| "sqlite://agent_tools.db".to_owned());
    let jobs = Jobs::connect(&url).await?;
    jobs::axum::mcp::serve_stdio(catalog(jobs), caller).await?;
    Ok(())
}

#[cfg(not(feature = "mcp"))]
async fn serve_mcp_stdio(_args: &[String]) -> anyhow::Result<()> {
    anyhow::bail!("MCP needs the `mcp` feature: cargo run --example agent_tools --features mcp")
}
