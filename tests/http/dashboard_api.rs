//! The dashboard's JSON API over HTTP, every route and action, on each backend.

use std::time::Duration;

use crate::support::dashboard::{AlwaysFails, Greet, Options, WaitAtGate, boot, job_name};
use crate::support::{Backend, start_time, wait_for_state, wait_until};
use axum::http::StatusCode;
use jobs::{JobId, JobState, ManualClock};
use serde_json::{Value, json};

backend_tests!(
    lists_jobs_by_state_name_and_search_a_page_at_a_time,
    shows_a_job_with_every_attempt_and_its_error_chain,
    requeues_and_deletes_one_job,
    requeues_and_deletes_every_job_a_filter_matches,
    answers_stats_throughput_and_servers,
    sends_an_event_to_the_job_it_shows_waiting_for_it,
);

/// Waits an hour for a draft's approval; returns who approved it.
#[jobs::job(retries = 0)]
async fn await_approval(ctx: jobs::JobContext, draft: String) -> anyhow::Result<String> {
    let approval = ctx
        .wait_for_event::<Value>("approval", &draft, Duration::from_secs(3600))
        .await?;
    Ok(approval
        .and_then(|approval| approval["by"].as_str().map(str::to_owned))
        .unwrap_or_default())
}

/// An attempt's error without the backtrace an `anyhow::Error` carries when
/// `RUST_BACKTRACE` asks for one; that backtrace must name the file of the job fn.
fn without_backtrace(error: &Value) -> Value {
    let mut error = error.clone();
    if let Some(backtrace) = error.as_object_mut().expect("an error").remove("backtrace") {
        let backtrace = backtrace.as_str().expect("a backtrace is text");
        assert!(backtrace.contains("support/dashboard.rs"), "{backtrace}");
    }
    error
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|job| job["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn lists_jobs_by_state_name_and_search_a_page_at_a_time(backend: Backend) {
    let dashboard = boot(backend, Options::no_server()).await;
    let ada = dashboard.greet("Ada").await;
    let grace = dashboard.greet("Grace").await;
    let report = dashboard.summarize("Q3 report").await;
    dashboard.jobs.delete(ada).await.unwrap();

    let all = dashboard.get("/api/jobs").await.json();
    assert_eq!(
        ids(&all),
        [report, grace, ada].map(|id| id.to_string()),
        "newest first"
    );
    assert_eq!(all["next"], Value::Null);

    let enqueued = dashboard.get("/api/jobs?state=Enqueued").await.json();
    assert_eq!(ids(&enqueued), [report, grace].map(|id| id.to_string()));
    let deleted = dashboard.get("/api/jobs?state=deleted").await.json();
    assert_eq!(ids(&deleted), [ada.to_string()]);

    let greet_name = &all["items"][1]["name"];
    let by_name = dashboard
        .get(&format!("/api/jobs?name={}", greet_name.as_str().unwrap()))
        .await
        .json();
    assert_eq!(ids(&by_name), [grace, ada].map(|id| id.to_string()));

    let search = dashboard.get("/api/jobs?search=q3%20REP").await.json();
    assert_eq!(ids(&search), [report.to_string()], "any case");
    let search = dashboard
        .get("/api/jobs?search=greet&state=Enqueued")
        .await
        .json();
    assert_eq!(ids(&search), [grace.to_string()], "filters combine");
    let nothing = dashboard.get("/api/jobs?search=%25").await.json();
    assert_eq!(ids(&nothing), Vec::<String>::new(), "% is a character");

    let first = dashboard.get("/api/jobs?limit=2").await.json();
    assert_eq!(ids(&first), [report, grace].map(|id| id.to_string()));
    let next = first["next"].as_str().expect("a next page");
    let second = dashboard
        .get(&format!("/api/jobs?limit=2&after={next}"))
        .await
        .json();
    assert_eq!(ids(&second), [ada.to_string()]);
    assert_eq!(second["next"], Value::Null);
    let empty = dashboard
        .get("/api/jobs?state=&name=&search=&after=&limit=")
        .await
        .json();
    assert_eq!(ids(&empty).len(), 3, "empty parameters are no filter");

    // Bad parameters are covered by tests/http/axum_plugin.rs.

    let names = dashboard.get("/api/registered-jobs").await.json();
    let names: Vec<&str> = names["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap())
        .collect();
    assert_eq!(names, jobs::registered_jobs());
    assert!(names.contains(&greet_name.as_str().unwrap()));
    dashboard.stop().await;
}

async fn shows_a_job_with_every_attempt_and_its_error_chain(backend: Backend) {
    let clock = ManualClock::new(start_time());
    let dashboard = boot(
        backend,
        Options {
            clock: Some(clock.clone()),
            ..Options::default()
        },
    )
    .await;
    let id = dashboard.jobs.enqueue(AlwaysFails {}).await.unwrap();
    wait_for_state(&dashboard.jobs, id, JobState::Scheduled).await;
    clock.advance(Duration::from_secs(10)); // past the first back-off
    let job = dashboard.wait_for(id, "Failed").await;

    assert_eq!(job["display_name"], "Always fails");
    assert_eq!(job["payload"], Value::Null, "no arguments");
    assert_eq!(job["attempt"], 2);
    assert_eq!(job["max_retries"], 1);
    let attempts = job["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2, "{job:#}");
    for (attempt, outcome) in [(1, "retried"), (2, "failed")] {
        let entry = &attempts[attempt - 1];
        assert_eq!(entry["attempt"], attempt);
        assert_eq!(entry["outcome"], outcome);
        assert!(entry["server"].is_string());
        assert!(entry["finished_at"].is_string());
        assert_eq!(
            without_backtrace(&entry["error"]),
            json!({ "message": "cannot write the report", "sources": ["disk full"] })
        );
    }
    let states: Vec<&str> = job["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "Enqueued",
            "Processing",
            "Scheduled",
            "Processing",
            "Failed"
        ]
    );

    // Requeued, the job starts counting again; its past attempts stay.
    let model = dashboard.summarize("<b>deck</b>").await;
    let failed = dashboard.wait_for(model, "Failed").await;
    assert_eq!(
        without_backtrace(&failed["attempts"][0]["error"]),
        json!({
            "message": "could not summarize <b>deck</b>",
            "sources": ["the model API timed out", "connection reset by peer"],
        })
    );
    assert_eq!(
        failed["last_error"],
        "could not summarize <b>deck</b>: the model API timed out: connection reset by peer"
    );
    dashboard.switch.turn_on();
    let reply = dashboard
        .post(&format!("/api/jobs/{model}/requeue"), json!(null))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let succeeded = dashboard.wait_for(model, "Succeeded").await;
    let outcomes: Vec<(u64, &str)> = succeeded["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attempt| {
            (
                attempt["attempt"].as_u64().unwrap(),
                attempt["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(outcomes, [(1, "failed"), (1, "succeeded")]);
    assert_eq!(succeeded["attempts"][1]["error"], Value::Null);
    dashboard.stop().await;
}

async fn requeues_and_deletes_one_job(backend: Backend) {
    let dashboard = boot(backend, Options::default()).await;
    let id = dashboard.summarize("memo").await;
    dashboard.wait_for(id, "Failed").await;
    dashboard.switch.turn_on();

    let reply = dashboard
        .post(&format!("/api/jobs/{id}/requeue"), json!(null))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let job = reply.json();
    assert_eq!(job["id"], id.to_string(), "answers the job as it is now");
    assert!(
        ["Enqueued", "Processing", "Succeeded"].contains(&job["state"].as_str().unwrap()),
        "{job:#}"
    );
    dashboard.wait_for(id, "Succeeded").await;

    // A running job cannot be requeued; deleting it discards its result.
    let running = dashboard.jobs.enqueue(WaitAtGate {}).await.unwrap();
    wait_for_state(&dashboard.jobs, running, JobState::Processing).await;
    let reply = dashboard
        .post(&format!("/api/jobs/{running}/requeue"), json!(null))
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(
        reply.json()["error"],
        format!("job {running} is Processing: it can be requeued once it has finished")
    );
    let reply = dashboard.delete(&format!("/api/jobs/{running}")).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    dashboard.probe.gate.add_permits(1);
    wait_until("the deleted job's attempt ends", || async {
        dashboard.probe.running() == 0
    })
    .await;
    assert_eq!(
        dashboard.get(&format!("/api/jobs/{running}")).await.json()["state"],
        "Deleted"
    );

    let unknown = JobId::new();
    for reply in [
        dashboard
            .post(&format!("/api/jobs/{unknown}/requeue"), json!(null))
            .await,
        dashboard.delete(&format!("/api/jobs/{unknown}")).await,
        dashboard.get(&format!("/api/jobs/{unknown}")).await,
    ] {
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(reply.json()["error"], format!("no job with id {unknown}"));
    }
    let reply = dashboard.post("/api/jobs/nope/requeue", json!(null)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    dashboard.stop().await;
}

async fn requeues_and_deletes_every_job_a_filter_matches(backend: Backend) {
    let dashboard = boot(backend, Options::no_server()).await;
    let greetings: Vec<JobId> = dashboard
        .jobs
        .enqueue_many(["Ada", "Adam", "Linus"].map(|name| Greet { name: name.into() }))
        .await
        .unwrap();
    let report = dashboard.summarize("report").await;
    let name = job_name::<Greet>();

    let reply = dashboard
        .post(
            "/api/jobs/delete",
            json!({ "name": name, "search": "greet ad" }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json(), json!({ "count": 2 }), "Ada and Adam");
    let deleted = dashboard.get("/api/jobs?state=Deleted").await.json();
    assert_eq!(
        ids(&deleted),
        [greetings[1], greetings[0]].map(|id| id.to_string())
    );

    let reply = dashboard
        .post("/api/jobs/requeue", json!({ "state": "Deleted" }))
        .await;
    assert_eq!(reply.json(), json!({ "count": 2 }));
    let stats = dashboard.get("/api/stats").await.json();
    assert_eq!(stats["counts"]["Enqueued"], 4);
    assert_eq!(stats["counts"]["Deleted"], 0);

    let reply = dashboard
        .post(
            "/api/jobs/delete",
            json!({ "state": "Enqueued", "search": "summarize" }),
        )
        .await;
    assert_eq!(reply.json(), json!({ "count": 1 }));
    assert_eq!(
        dashboard.get(&format!("/api/jobs/{report}")).await.json()["state"],
        "Deleted"
    );

    for (body, needle) in [
        (json!({}), "refusing to requeue every job"),
        (
            json!({ "state": "", "search": " " }),
            "refusing to requeue every job",
        ),
        (json!({ "state": "Exploded" }), "state: unknown job state"),
        (json!({ "colour": "red" }), "unknown field `colour`"),
        (json!([1]), "expected a JSON object"),
    ] {
        let reply = dashboard.post("/api/jobs/requeue", body.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        let error = reply.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(needle), "{body}: {error}");
    }
    let reply = dashboard.post("/api/jobs/delete", json!({})).await;
    assert!(
        reply.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("refusing to delete every job")
    );
    dashboard.stop().await;
}

async fn answers_stats_throughput_and_servers(backend: Backend) {
    let dashboard = boot(backend, Options::default()).await;
    let ok = dashboard.greet("Ada").await;
    let failed = dashboard.summarize("x").await;
    let greeted = dashboard.wait_for(ok, "Succeeded").await;
    assert_eq!(greeted["result"], "Hello, Ada!", "what the job returned");
    let failed_job = dashboard.wait_for(failed, "Failed").await;
    assert_eq!(failed_job["result"], serde_json::Value::Null);

    let reply = dashboard.get("/api/stats").await;
    let stats = reply.json();
    assert_eq!(stats["total"], 2);
    let counts = stats["counts"].as_object().unwrap();
    let at = |state: JobState| reply.body.find(&format!("\"{state}\":")).unwrap();
    assert!(
        JobState::ALL
            .windows(2)
            .all(|pair| at(pair[0]) < at(pair[1])),
        "every state, in display order: {}",
        reply.body
    );
    assert_eq!(counts["Succeeded"], 1);
    assert_eq!(counts["Failed"], 1);
    let throughput = stats["throughput"].as_array().unwrap();
    assert_eq!(throughput.len(), 60, "a point for every minute of the hour");
    let sum = |key: &str| -> u64 {
        throughput
            .iter()
            .map(|point| point[key].as_u64().unwrap())
            .sum()
    };
    assert_eq!((sum("succeeded"), sum("failed")), (1, 1));
    let minutes: Vec<&str> = throughput
        .iter()
        .map(|point| point["minute"].as_str().unwrap())
        .collect();
    assert!(
        minutes.windows(2).all(|pair| pair[0] < pair[1]),
        "oldest first"
    );

    let servers = dashboard.get("/api/servers").await.json();
    let items = servers["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{servers:#}");
    assert!(items[0]["workers"].as_u64().unwrap() >= 1);
    assert!(items[0]["heartbeat_at"].is_string());
    assert!(
        items[0]["jobs"].is_array(),
        "the names it runs: {servers:#}"
    );
    assert!(servers["now"].is_string());
    assert_eq!(servers["unserved"], json!([]), "its server runs every name");
    dashboard.stop().await;

    let quiet = boot(backend, Options::no_server()).await;
    assert_eq!(quiet.get("/api/servers").await.json()["items"], json!([]));
    quiet.stop().await;
}

async fn sends_an_event_to_the_job_it_shows_waiting_for_it(backend: Backend) {
    let dashboard = boot(backend, Options::default()).await;
    let id = dashboard
        .jobs
        .enqueue(AwaitApproval {
            draft: "d/1".to_owned(),
        })
        .await
        .unwrap();
    let path = format!("/api/jobs/{id}");
    wait_until("the job waits for its event", || async {
        dashboard.get(&path).await.json()["waiting_for_event"] != Value::Null
    })
    .await;
    let job = dashboard.get(&path).await.json();
    assert_eq!(job["state"], "Scheduled");
    assert_eq!(job["waiting_for_event"]["name"], "approval");
    assert_eq!(job["waiting_for_event"]["key"], "d/1");
    assert_eq!(job["waiting_for_event"]["until"], job["run_at"]);

    let reply = dashboard
        .post("/api/events/approval/d%2F1", json!({"by": "ada"}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json(), json!({"resumed": 1}));
    let done = dashboard.wait_for(id, "Succeeded").await;
    assert_eq!(done["result"], "ada");
    assert_eq!(done["waiting_for_event"], Value::Null);
    let again = dashboard
        .post("/api/events/approval/d%2F1", json!(null))
        .await;
    assert_eq!(again.json(), json!({"resumed": 0}), "kept, nobody waits");
    dashboard.stop().await;
}
