//! Agent tools end to end: the schema `#[job]` derives, the catalog built from it, and
//! tool calls that enqueue exactly the job asked for — or store nothing and say why.

use std::time::Duration;

use crate::support::{Backend, TestDb, start_time, stored_jobs};
use chrono::{DateTime, TimeZone, Utc};
use jobs::prelude::*;
use jobs::{JobState, Jobs, ManualClock, ToolCatalog, ToolErrorKind, ToolResult};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

mod schema;

backend_tests!(
    run_call_enqueues_exactly_the_job,
    schedule_call_sets_run_at_and_labels,
    recurring_call_stores_the_schedule,
    invalid_calls_store_nothing,
    list_and_delete_only_the_callers_jobs,
    http_routes_list_and_call_tools,
);

/// Where a reminder goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
struct Channel {
    /// The medium.
    kind: Medium,
    /// An address on it.
    address: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Medium {
    Email,
    Sms,
    Webhook { secret: Option<String> },
}

/// Reminds a user of something.
#[job(display = "Send reminder to {user_id}", labels = ["user-{user_id}"])]
async fn send_reminder(
    /// The user to remind.
    user_id: u64,
    /// What to remind them of.
    text: String,
    channel: Channel,
    tags: Vec<String>,
    priority: Option<u8>,
    #[serde(default)] repeat: u32,
) {
    let _ = (user_id, text, channel, tags, priority, repeat);
}

/// Summarizes a user's inbox.
#[job]
async fn summarize_inbox(user_id: u64) {
    let _ = user_id;
}

/// Analyzes a document.
#[job]
async fn analyze_document(document_id: u64) {
    let _ = document_id;
}

/// Never offered: its data has no JSON Schema.
#[derive(Debug, Serialize, Deserialize)]
struct Opaque(u32);

#[job]
async fn opaque_job(value: Opaque) {
    let _ = value;
}

#[job(tool = false)]
async fn private_job(user_id: u64) {
    let _ = user_id;
}

/// Renamed and skipped fields, as serde reads them.
#[job]
async fn renamed_job(#[serde(rename = "userId")] user_id: u64, #[serde(skip)] cache: u32) {
    let _ = (user_id, cache);
}

/// A job whose tool name, `analyze_document`, clashes with the one above.
mod archive {
    use jobs::prelude::*;

    /// Moves a document to the archive.
    #[job]
    pub(crate) async fn analyze_document(document_id: u64) {
        let _ = document_id;
    }
}

fn catalog(jobs: &Jobs) -> ToolCatalog {
    ToolCatalog::new(jobs.clone())
        .allow::<SendReminder>()
        .allow_recurring::<SummarizeInbox>()
        .allow::<AnalyzeDocument>()
        .allow::<OpaqueJob>()
        .allow::<PrivateJob>()
}

fn reminder_args() -> Value {
    json!({
        "user_id": 7,
        "text": "Call mum",
        "channel": {"kind": "email", "address": "a@example.com"},
        "tags": ["family"],
        "priority": null,
    })
}

async fn setup(backend: Backend) -> (TestDb, Jobs, ManualClock) {
    let db = TestDb::new(backend).await;
    let clock = ManualClock::new(start_time());
    let jobs = db.jobs(&clock).await;
    (db, jobs, clock)
}

#[tokio::test]
async fn tools_are_listed_in_the_function_calling_shape() {
    let (_db, jobs, _clock) = setup(Backend::Sqlite).await;
    let tools = catalog(&jobs).tools();
    let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_str()).collect();
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
    for tool in &tools {
        assert!(
            !tool.name.is_empty()
                && tool.name.len() <= 64
                && tool
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "{}",
            tool.name
        );
        assert_eq!(tool.input_schema["type"], "object", "{}", tool.name);
    }
    let recurring = &tools[4];
    assert!(recurring.input_schema["properties"]["cron"].is_object());
    assert!(
        recurring.input_schema["required"]
            .as_array()
            .unwrap()
            .contains(&json!("cron"))
    );
    let openai = tools[0].openai();
    assert_eq!(openai["type"], "function");
    assert_eq!(openai["function"]["name"], "run_send_reminder");
    assert_eq!(openai["function"]["parameters"], tools[0].input_schema);
    let plain = serde_json::to_value(&tools[0]).unwrap();
    assert_eq!(plain["input_schema"], tools[0].input_schema);
}

async fn run_call_enqueues_exactly_the_job(backend: Backend) {
    let (_db, jobs, _clock) = setup(backend).await;
    let result = catalog(&jobs)
        .call_tool("run_send_reminder", reminder_args(), "conversation-42")
        .await
        .unwrap();
    let ToolResult::Enqueued {
        job_id,
        run_at,
        state,
    } = result
    else {
        panic!("{result:?}")
    };
    assert_eq!((run_at, state), (start_time(), JobState::Enqueued));
    let job = jobs.get(job_id).await.unwrap();
    let expected = SendReminder {
        user_id: 7,
        text: "Call mum".into(),
        channel: Channel {
            kind: Medium::Email,
            address: "a@example.com".into(),
        },
        tags: vec!["family".into()],
        priority: None,
        repeat: 0,
    };
    assert_eq!(job.payload, serde_json::to_value(&expected).unwrap());
    assert_eq!(job.display_name, "Send reminder to 7");
    assert_eq!(job.name, SendReminder::DESCRIPTOR.name());
    assert_eq!(job.state, JobState::Enqueued);
    assert_eq!(job.run_at, start_time());
    assert_eq!(
        job.labels,
        ["user-7", "tool-call", "caller:conversation-42"]
    );
    assert_eq!(stored_jobs(&jobs).await, 1);
}

async fn schedule_call_sets_run_at_and_labels(backend: Backend) {
    let (_db, jobs, _clock) = setup(backend).await;
    let catalog = catalog(&jobs);
    let tomorrow_at_10 = Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).unwrap();
    let mut args = reminder_args();
    args["at"] = json!("2026-11-28T10:00:00+01:00");
    let result = catalog
        .call_tool("schedule_send_reminder", args, "u1")
        .await
        .unwrap();
    let ToolResult::Enqueued {
        job_id,
        run_at,
        state,
    } = result
    else {
        panic!("{result:?}")
    };
    assert_eq!((run_at, state), (tomorrow_at_10, JobState::Scheduled));
    let job = jobs.get(job_id).await.unwrap();
    assert_eq!(
        (job.run_at, job.state),
        (tomorrow_at_10, JobState::Scheduled)
    );
    assert_eq!(job.payload["user_id"], 7);
    assert!(job.payload.get("at").is_none(), "{}", job.payload);

    let result = catalog
        .call_tool(
            "schedule_analyze_document",
            json!({"document_id": 42, "delay_seconds": 90}),
            "u1",
        )
        .await
        .unwrap();
    let ToolResult::Enqueued { job_id, .. } = result else {
        panic!("{result:?}")
    };
    let job = jobs.get(job_id).await.unwrap();
    assert_eq!(job.run_at, start_time() + chrono::Duration::seconds(90));
    assert_eq!(job.payload, json!({"document_id": 42}));
    assert_eq!(job.labels, ["tool-call", "caller:u1"]);
}

async fn recurring_call_stores_the_schedule(backend: Backend) {
    let (_db, jobs, _clock) = setup(backend).await;
    let result = catalog(&jobs)
        .call_tool(
            "schedule_summarize_inbox_recurring",
            json!({"user_id": 7, "cron": "0 8 * * *", "zone": "Europe/Brussels"}),
            "u1",
        )
        .await
        .unwrap();
    let ToolResult::Recurring {
        recurring_id,
        next_run_at,
        ..
    } = result
    else {
        panic!("{result:?}")
    };
    // Opaque: who owns it is stored beside it, not spelt in it.
    assert!(
        recurring_id.starts_with("tool:summarize_inbox:") && !recurring_id.contains("u1"),
        "{recurring_id}"
    );
    let stored = jobs.recurring().get(&recurring_id).await.unwrap();
    assert_eq!(stored.zone, "Europe/Brussels");
    assert_eq!(stored.job_name, SummarizeInbox::DESCRIPTOR.name());
    assert_eq!(stored.payload, json!({"user_id": 7}));
    assert_eq!(stored.labels, ["tool-call", "caller:u1"]);
    // Each run says it came from a tool call, and whose.
    let run = jobs.recurring().trigger(&recurring_id).await.unwrap();
    assert_eq!(
        jobs.get(run).await.unwrap().labels,
        ["tool-call", "caller:u1"]
    );
    let expected_next: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 11, 28, 7, 0, 0).unwrap();
    assert_eq!(
        (stored.next_run_at, next_run_at),
        (expected_next, Some(expected_next))
    );
}

async fn invalid_calls_store_nothing(backend: Backend) {
    let (_db, jobs, _clock) = setup(backend).await;
    let catalog = catalog(&jobs);
    let mut missing = reminder_args();
    missing.as_object_mut().unwrap().remove("text");
    let mut far = reminder_args();
    far["at"] = json!("2028-01-01T10:00:00Z");
    let mut both = reminder_args();
    both["delay_seconds"] = json!(60);
    both["at"] = json!("2026-11-28T10:00:00Z");
    let cases: Vec<(&str, Value, ToolErrorKind, Option<&str>)> = vec![
        (
            "run_send_reminder",
            missing,
            ToolErrorKind::InvalidArguments,
            Some("/text"),
        ),
        (
            "run_analyze_document",
            json!({"document_id": "seven"}),
            ToolErrorKind::InvalidArguments,
            Some("/document_id"),
        ),
        (
            "schedule_summarize_inbox_recurring",
            json!({"user_id": 7, "cron": "0 25 * * *"}),
            ToolErrorKind::InvalidSchedule,
            Some("/cron"),
        ),
        (
            "schedule_summarize_inbox_recurring",
            json!({"user_id": 7, "cron": "0 8 * * *", "zone": "Mars/Olympus"}),
            ToolErrorKind::InvalidSchedule,
            Some("/zone"),
        ),
        (
            "schedule_summarize_inbox_recurring",
            json!({"user_id": 7}),
            ToolErrorKind::InvalidArguments,
            Some("/cron"),
        ),
        (
            "schedule_send_reminder",
            far,
            ToolErrorKind::TooFarAhead,
            Some("/at"),
        ),
        (
            "schedule_analyze_document",
            json!({"document_id": 1, "delay_seconds": 400 * 86_400}),
            ToolErrorKind::TooFarAhead,
            Some("/delay_seconds"),
        ),
        (
            "schedule_send_reminder",
            both,
            ToolErrorKind::InvalidArguments,
            Some("/at"),
        ),
        (
            "schedule_summarize_inbox_recurring",
            json!({"user_id": 7, "cron": "*/5 * * * *"}),
            ToolErrorKind::IntervalTooShort,
            Some("/cron"),
        ),
        (
            "schedule_analyze_document_recurring",
            json!({"document_id": 1, "cron": "0 8 * * *"}),
            ToolErrorKind::UnknownTool,
            None,
        ),
        (
            "run_private_job",
            json!({"user_id": 1}),
            ToolErrorKind::UnknownTool,
            None,
        ),
        (
            "run_opaque_job",
            json!({"value": 1}),
            ToolErrorKind::UnknownTool,
            None,
        ),
        (
            "run_secret_job",
            json!({}),
            ToolErrorKind::UnknownTool,
            None,
        ),
    ];
    for (tool, args, kind, field) in cases {
        let error = catalog
            .call_tool(tool, args.clone(), "u1")
            .await
            .expect_err(tool);
        assert_eq!(error.kind, kind, "{tool} {args}: {error:?}");
        assert_eq!(error.field.as_deref(), field, "{tool} {args}: {error:?}");
        assert!(!error.message.is_empty());
    }
    assert_eq!(stored_jobs(&jobs).await, 0);
    assert!(jobs.recurring().list().await.unwrap().is_empty());

    let error = catalog
        .call_tool(
            "run_analyze_document",
            json!({"document_id": "seven"}),
            "u1",
        )
        .await
        .unwrap_err();
    assert_eq!(
        serde_json::to_value(&error).unwrap(),
        json!({
            "error": "invalid_arguments",
            "field": "/document_id",
            "expected": "an integer",
            "got": "\"seven\"",
            "message": "`/document_id` should be an integer, not \"seven\"",
        })
    );
}

async fn list_and_delete_only_the_callers_jobs(backend: Backend) {
    let (_db, jobs, _clock) = setup(backend).await;
    let catalog = catalog(&jobs);
    let scheduled = |caller: &'static str| {
        let catalog = catalog.clone();
        async move {
            match catalog
                .call_tool(
                    "schedule_analyze_document",
                    json!({"document_id": 1, "delay_seconds": 3600}),
                    caller,
                )
                .await
                .unwrap()
            {
                ToolResult::Enqueued { job_id, .. } => job_id,
                other => panic!("{other:?}"),
            }
        }
    };
    let mine = scheduled("alice").await;
    let theirs = scheduled("bob").await;
    let ToolResult::Recurring { recurring_id, .. } = catalog
        .call_tool(
            "schedule_summarize_inbox_recurring",
            json!({"user_id": 1, "cron": "0 8 * * *"}),
            "alice",
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    let listed = catalog
        .call_tool("list_recurring_jobs", json!({}), "alice")
        .await
        .unwrap();
    let ToolResult::Scheduled { jobs: listed, .. } = listed else {
        panic!("{listed:?}")
    };
    let ids: Vec<&str> = listed.iter().map(|job| job.id.as_str()).collect();
    assert_eq!(ids, [mine.to_string().as_str(), recurring_id.as_str()]);

    let error = catalog
        .call_tool("delete_job", json!({"id": theirs.to_string()}), "alice")
        .await
        .unwrap_err();
    assert_eq!(error.kind, ToolErrorKind::NotFound);
    assert_eq!(jobs.get(theirs).await.unwrap().state, JobState::Scheduled);
    for id in [mine.to_string(), recurring_id.clone()] {
        catalog
            .call_tool("delete_job", json!({"id": id}), "alice")
            .await
            .unwrap();
    }
    assert_eq!(jobs.get(mine).await.unwrap().state, JobState::Deleted);
    assert!(jobs.recurring().get(&recurring_id).await.is_err());
    let _ = Duration::ZERO;
}

/// `POST`s (with a body) or `GET`s `url`, with `X-Caller` when given.
async fn http(url: &str, body: Option<Value>, caller: Option<&str>) -> (u16, Value) {
    use axum::body::Bytes;
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let method = if body.is_some() { "POST" } else { "GET" };
    let mut request = axum::http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json");
    if let Some(caller) = caller {
        request = request.header("x-caller", caller);
    }
    let body = body.map_or_else(String::new, |body| body.to_string());
    let response = client
        .request(request.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

async fn http_routes_list_and_call_tools(backend: Backend) {
    let (_db, jobs, _clock) = setup(backend).await;
    // These requests say who they are for in `X-Caller`, which the app opts in to.
    let routes = jobs::axum::tool_routes()
        .layer(axum::middleware::from_fn(jobs::axum::caller_from_header))
        .with_state(catalog(&jobs));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, routes).await.unwrap() });

    let (status, tools) = http(&format!("{url}/tools"), None, None).await;
    assert_eq!(status, 200);
    assert_eq!(tools[0]["name"], "run_send_reminder");
    assert_eq!(tools[0]["input_schema"]["type"], "object");

    let call = format!("{url}/tools/run_analyze_document");
    let (status, result) = http(&call, Some(json!({"document_id": 42})), Some("c-9")).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["result"], "enqueued");
    let job = jobs
        .get(result["job_id"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap();
    assert_eq!(job.payload, json!({"document_id": 42}));
    assert_eq!(job.labels, ["tool-call", "caller:c-9"]);

    let (status, error) = http(&call, Some(json!({"document_id": "seven"})), Some("c-9")).await;
    assert_eq!((status, &error["field"]), (422, &json!("/document_id")));
    let (status, error) = http(&call, Some(json!({"document_id": 1})), None).await;
    assert_eq!((status, &error["code"]), (401, &json!("missing_caller")));
    let (status, _) = http(
        &format!("{url}/tools/run_nothing"),
        Some(json!({})),
        Some("c"),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(stored_jobs(&jobs).await, 1);
    server.abort();
}
