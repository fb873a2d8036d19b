//! The dashboard's queues API: every queue with its counts, pause, limits and rate; a
//! queue paused and resumed from the API, seen by a running server; job names
//! likewise; bad names refused; on each backend.

use std::time::Duration;

use crate::support::dashboard::{Dashboard, EventStream, Greet, Options, boot, job_name};
use crate::support::{Backend, start_time, test_server, wait_until};
use axum::http::StatusCode;
use jobs::prelude::*;
use jobs::{JobState, ManualClock};
use serde_json::{Value, json};

backend_tests!(
    a_queue_paused_from_the_api_starts_nothing_until_it_is_resumed_there,
    a_job_name_is_paused_and_resumed_from_the_api,
    bad_names_are_refused_with_the_value_named,
    a_rated_queue_shows_its_rate_and_the_jobs_it_holds_back,
);

#[job(queue = "email", display = "Email {user}")]
pub(crate) async fn send_email(user: u32) {
    let _ = user;
}

/// A dashboard without a server of its own, on a manual clock at [`start_time`].
async fn boot_on_a_manual_clock(backend: Backend) -> (ManualClock, Dashboard) {
    let clock = ManualClock::new(start_time());
    let options = Options {
        clock: Some(clock.clone()),
        ..Options::no_server()
    };
    (clock, boot(backend, options).await)
}

/// The queue named `queue` in a `GET /api/queues` answer.
fn queue<'a>(answer: &'a Value, queue: &str) -> &'a Value {
    answer["items"]
        .as_array()
        .and_then(|items| items.iter().find(|item| item["queue"] == queue))
        .unwrap_or_else(|| panic!("no queue {queue} in {answer:#}"))
}

async fn a_queue_paused_from_the_api_starts_nothing_until_it_is_resumed_there(backend: Backend) {
    let (_clock, dashboard) = boot_on_a_manual_clock(backend).await;
    let server = test_server(&dashboard.jobs, &dashboard.probe)
        .name("mailer")
        .queue_limit("email", 2)
        .global_queue_limit("email", 3)
        .start()
        .await
        .unwrap();
    let later = dashboard
        .jobs
        .enqueue(SendEmail { user: 0 })
        .after(Duration::from_secs(3600))
        .await
        .unwrap();
    let (_, stream) = EventStream::open(&dashboard.at("/api/events?topics=queues"), None).await;
    let mut stream = stream.expect("a stream");
    let is_email = |item: &&Value| item["queue"] == "email";
    let email_paused = move |paused: bool| {
        move |list: &Value| {
            list["items"]
                .as_array()
                .and_then(|items| items.iter().find(is_email))
                .is_some_and(|email| email["paused"] == paused)
        }
    };
    stream.wait_for("queues", email_paused(false)).await;

    let reply = dashboard.post("/api/queues/email/pause", json!(null)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let paused = reply.json();
    assert_eq!(paused["queue"], "email");
    assert_eq!(paused["paused"], true);
    assert_eq!(
        paused["paused_by"], "dashboard",
        "no credentials: the dashboard"
    );
    let at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(paused["paused_at"].clone()).unwrap();
    assert_eq!(at, start_time());

    let listed = dashboard.get("/api/queues").await.json();
    let email = queue(&listed, "email");
    assert_eq!(*email, paused, "the answer is the queue as listed");
    assert_eq!(email["scheduled"], 1);
    assert_eq!(
        email["limits"],
        json!([{
            "server": "mailer",
            "server_id": email["limits"][0]["server_id"],
            "local": 2,
            "global": 3,
            "rate": null,
        }]),
        "the limits the server declares"
    );
    assert_eq!(listed["paused_job_names"], json!([]));
    let live = stream.wait_for("queues", email_paused(true)).await;
    assert_eq!(
        live["items"].as_array().unwrap().iter().find(is_email),
        Some(email),
        "the live update is the list"
    );

    // Once the server has the pause in its view, a job of the queue waits while one
    // of another queue runs.
    wait_until("the server sees the pause", || async {
        server.paused_queues().contains(&"email".to_owned())
    })
    .await;
    let email_job = dashboard.jobs.enqueue(SendEmail { user: 1 }).await.unwrap();
    let greet = dashboard.greet("Ada").await;
    dashboard.wait_for(greet, "Succeeded").await;
    assert_eq!(
        dashboard.jobs.get(email_job).await.unwrap().state,
        JobState::Enqueued
    );
    let listed = dashboard.get("/api/queues").await.json();
    assert_eq!(queue(&listed, "email")["waiting"], 1, "{listed:#}");

    let reply = dashboard
        .post("/api/queues/email/resume", json!(null))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let resumed = reply.json();
    assert_eq!(resumed["paused"], false);
    assert_eq!(resumed["paused_by"], Value::Null);
    assert_eq!(resumed["paused_at"], Value::Null);
    dashboard.wait_for(email_job, "Succeeded").await;
    // Resuming a queue that is not paused changes nothing.
    let again = dashboard
        .post("/api/queues/email/resume", json!(null))
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.json()["paused"], false);
    assert_eq!(
        dashboard.jobs.get(later).await.unwrap().state,
        JobState::Scheduled
    );
    assert!(dashboard.jobs.paused().await.unwrap().is_empty());
    server.shutdown().await;
    dashboard.stop().await;
}

async fn a_job_name_is_paused_and_resumed_from_the_api(backend: Backend) {
    let dashboard = boot(backend, Options::no_server()).await;
    let name = job_name::<Greet>();
    let path = format!("/api/job-names/{}", name.replace(':', "%3A"));
    let server = test_server(&dashboard.jobs, &dashboard.probe)
        .start()
        .await
        .unwrap();
    let reply = dashboard.post(&format!("{path}/pause"), json!(null)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let paused = reply.json();
    assert_eq!(paused["name"], name);
    assert_eq!(paused["paused"], true);
    assert_eq!(paused["paused_by"], "dashboard");
    let listed = dashboard.get("/api/queues").await.json();
    assert_eq!(listed["paused_job_names"], json!([paused]));

    // A pause of a job name is not a queue's: nothing about it in the queue list.
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|item| item["paused"] == false),
        "{listed:#}"
    );
    let greet = dashboard.greet("Ada").await;
    let email = dashboard.jobs.enqueue(SendEmail { user: 1 }).await.unwrap();
    dashboard.wait_for(email, "Succeeded").await;
    assert_eq!(
        dashboard.jobs.get(greet).await.unwrap().state,
        JobState::Enqueued
    );
    let reply = dashboard.post(&format!("{path}/resume"), json!(null)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["paused"], false);
    dashboard.wait_for(greet, "Succeeded").await;
    server.shutdown().await;
    dashboard.stop().await;
}

async fn bad_names_are_refused_with_the_value_named(backend: Backend) {
    let dashboard = boot(backend, Options::no_server()).await;
    for (path, named) in [
        ("/api/queues/no%20spaces/pause", "`no spaces`"),
        ("/api/queues/a%2Fb/resume", "`a/b`"),
        ("/api/queues/%C3%A9t%C3%A9/pause", "`\u{e9}t\u{e9}`"),
    ] {
        let reply = dashboard.post(path, json!(null)).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            reply.body
        );
        let error = reply.json();
        assert_eq!(error["code"], "invalid_queue", "{error}");
        let message = error["error"].as_str().unwrap();
        assert!(
            message.starts_with("queue: invalid queue name ") && message.contains(named),
            "{message}"
        );
    }
    for path in ["/api/job-names/%20/pause", "/api/job-names/a%00b/pause"] {
        let reply = dashboard.post(path, json!(null)).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            reply.body
        );
        assert!(
            reply.json()["error"]
                .as_str()
                .unwrap()
                .starts_with("name: "),
            "{}",
            reply.body
        );
    }
    assert!(dashboard.jobs.paused().await.unwrap().is_empty());
    // Paths beside the routes are as unknown as before.
    for path in ["/api/queues/email", "/api/queues/email/stop"] {
        let reply = dashboard.post(path, json!(null)).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            reply.body
        );
    }
    let reply = dashboard.get("/api/queues/email/pause").await;
    assert_eq!(
        reply.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "{}",
        reply.body
    );
    dashboard.stop().await;
}

async fn a_rated_queue_shows_its_rate_and_the_jobs_it_holds_back(backend: Backend) {
    let (clock, dashboard) = boot_on_a_manual_clock(backend).await;
    let server = test_server(&dashboard.jobs, &dashboard.probe)
        .name("mailer")
        .server_timeout(Duration::from_secs(30 * 24 * 3600))
        .queue_rate("email", "2/1h".parse().unwrap())
        .start()
        .await
        .unwrap();
    let ids = dashboard
        .jobs
        .enqueue_many((0..5).map(|user| SendEmail { user }))
        .await
        .unwrap();
    let succeeded = || async {
        let mut count = 0;
        for &id in &ids {
            if dashboard.jobs.get(id).await.unwrap().state == JobState::Succeeded {
                count += 1;
            }
        }
        count
    };
    wait_until("two emails went out", || async { succeeded().await == 2 }).await;
    let listed = dashboard.get("/api/queues").await.json();
    let email = queue(&listed, "email");
    assert_eq!(email["waiting"], 3);
    assert_eq!(email["rate_limited"], 3, "{email:#}");
    assert_eq!(email["limits"][0]["rate"], "2/1h");
    assert_eq!(email["limits"][0]["global"], Value::Null);
    clock.advance(Duration::from_secs(3601));
    wait_until("two more went out", || async { succeeded().await == 4 }).await;
    clock.advance(Duration::from_secs(3601));
    wait_until("the last went out", || async { succeeded().await == 5 }).await;
    let listed = dashboard.get("/api/queues").await.json();
    let email = queue(&listed, "email");
    assert_eq!(
        (email["waiting"].clone(), email["rate_limited"].clone()),
        (json!(0), json!(0))
    );
    server.shutdown().await;
    dashboard.stop().await;
}
