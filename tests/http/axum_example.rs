//! The README's main command, `cargo run --example agent`, as a process: it starts,
//! its dashboard answers on :8000, a reminder and a document analysis run through it,
//! and SIGTERM stops it cleanly.

#![cfg(unix)]

use std::process::Stdio;
use std::time::Duration;

use crate::support::dashboard::EventStream;
use crate::support::example_binary::{build_example, read_addresses};
use crate::support::http::Http;
use axum::http::StatusCode;
use jobs::JobId;
use serde_json::json;
use tokio::process::Command;

/// The port the README promises for the dashboard.
const DASHBOARD_PORT: u16 = 8000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_example_serves_its_dashboard_on_8000() {
    let binary = build_example("agent");
    let dir = tempfile::tempdir().unwrap();
    // Port 8000 as in the README, unless something on this machine has it already.
    let dashboard_port = if std::net::TcpListener::bind(("127.0.0.1", DASHBOARD_PORT)).is_ok() {
        DASHBOARD_PORT
    } else {
        eprintln!("port {DASHBOARD_PORT} is busy here; the example gets a free one instead");
        0
    };

    let mut command = Command::new(&binary);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("JOBS__") {
            command.env_remove(name);
        }
    }
    let mut child = command
        .current_dir(dir.path())
        .env("PORT", "0")
        .env("JOBS__DASHBOARD__PORT", dashboard_port.to_string())
        // This test makes its own jobs: no first-start demo beside them.
        .env("DEMO", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|error| panic!("{}: {error}", binary.display()));
    let (app, dashboard) = read_addresses(&mut child).await;
    if dashboard_port == DASHBOARD_PORT {
        assert_eq!(dashboard, format!("http://127.0.0.1:{DASHBOARD_PORT}"));
    }
    let http = Http::new();

    let page = http.get(&format!("{dashboard}/")).await;
    assert_eq!(page.status, StatusCode::OK);
    let page = http.get(&format!("{dashboard}/api/registered-jobs")).await;
    assert_eq!(page.status, StatusCode::OK);
    for name in [
        "reminders.send",
        "documents.summarize",
        "documents.embed",
        "documents.embed_chunk",
        "documents.publish",
        "inbox.summarize",
    ] {
        assert!(
            page.body.contains(name),
            "{name} is registered: {}",
            page.body
        );
    }

    // A reminder due now runs at once, and ends when the user answers it.
    let reply = http
        .post(
            &format!("{app}/reminders"),
            json!({ "user_id": 7, "text": "Review the Q3 deck", "in_seconds": 0 }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let reminder = job_id(&reply.json()["job_id"]);
    let reply = http
        .post(
            &format!("{app}/reminders/{reminder}/answer"),
            json!({ "text": "Done, thanks" }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    wait_until_succeeded(&dashboard, reminder).await;

    // A document analysis runs its steps, each its own job, embeds the chunks as a
    // batch, waits for its approval and, approved, is announced.
    let reply = http
        .post(&format!("{app}/documents/3/analyze"), json!({}))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let steps = reply.json()["steps"].clone();
    let steps: Vec<JobId> = steps.as_array().unwrap().iter().map(job_id).collect();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0], job_id(&reply.json()["job_id"]));
    for step in steps {
        wait_until_succeeded(&dashboard, step).await;
    }
    let publish = awaiting_approval(&http, &format!("{app}/documents/3")).await;
    // The document says so as the job begins its wait; the approval finds the job
    // once the wait is stored (the attempt's result), as a person's would a moment
    // later.
    wait_until_in(&dashboard, publish, "Scheduled").await;
    let reply = http
        .post(
            &format!("{app}/documents/3/approve"),
            json!({ "by": "ana" }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    wait_until_succeeded(&dashboard, publish).await;
    let document = http.get(&format!("{app}/documents/3")).await.json();
    assert_eq!(document["analyzed"], true, "{document:#}");

    // The recurring morning summary is stored at boot and can be run now.
    let recurring = http
        .get(&format!(
            "{dashboard}/api/recurring-jobs/morning-email-summary"
        ))
        .await;
    assert_eq!(recurring.status, StatusCode::OK, "{}", recurring.body);
    let reply = http
        .post(&format!("{app}/inbox/summarize-now"), json!({}))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    wait_until_succeeded(&dashboard, job_id(&reply.json()["job_id"])).await;
    let summaries = http.get(&format!("{app}/inbox/summaries")).await.json();
    assert_eq!(summaries.as_array().map(Vec::len), Some(1), "{summaries:#}");

    // SIGTERM, as `docker stop` sends: a graceful exit.
    let pid = child.id().expect("still running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the example exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}

fn job_id(value: &serde_json::Value) -> JobId {
    value.as_str().expect("a job id").parse().unwrap()
}

/// Waits on the dashboard's live updates (no polling) until job `id` succeeded.
/// Waits until the document at `url` waits for its approval (its chunks are embedded,
/// retries included) and returns the job that waits, whose id is the approval's key.
async fn awaiting_approval(http: &Http, url: &str) -> JobId {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let document = http.get(url).await.json();
        if let Some(key) = document["awaiting_approval"].as_str() {
            return key.parse().unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the analysis never waited for its approval: {document:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_until_succeeded(dashboard: &str, id: JobId) {
    wait_until_in(dashboard, id, "Succeeded").await;
}

async fn wait_until_in(dashboard: &str, id: JobId, state: &str) {
    let url = format!("{dashboard}/api/events?topics=job&id={id}");
    let (status, stream) = EventStream::open(&url, None).await;
    assert_eq!(status, StatusCode::OK);
    let mut stream = stream.expect("an event stream");
    stream.wait_for("job", |job| job["state"] == state).await;
}
