//! The dashboard's recurring-jobs API: list, one, trigger, enable, disable, delete, and
//! their live updates, on each backend.

use crate::support::Backend;
use crate::support::dashboard::{EventStream, Greet, Options, boot};
use axum::http::StatusCode;
use jobs::JobId;
use serde_json::{Value, json};

backend_tests!(recurring_jobs_are_listed_triggered_switched_and_deleted);

async fn recurring_jobs_are_listed_triggered_switched_and_deleted(backend: Backend) {
    let dashboard = boot(backend, Options::default()).await;
    // An id with a slash and a space: the routes take it percent-encoded.
    let id = "reports/nightly digest";
    let path = "/api/recurring-jobs/reports%2Fnightly%20digest";
    dashboard
        .jobs
        .recurring()
        .cron(
            id,
            "0 3 * * *",
            Greet {
                name: "<b>night</b>".into(),
            },
        )
        .zone("Europe/Brussels")
        .await
        .unwrap();

    let list = dashboard.get("/api/recurring-jobs").await.json();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list:#}");
    let recurring = &items[0];
    assert_eq!(recurring["id"], id);
    assert_eq!(recurring["schedule"], "0 3 * * *");
    assert_eq!(recurring["zone"], "Europe/Brussels");
    assert_eq!(recurring["display_name"], "Greet <b>night</b>");
    assert_eq!(recurring["payload"], json!({ "name": "<b>night</b>" }));
    assert_eq!(recurring["enabled"], true);
    assert_eq!(recurring["source"], "Api");
    assert!(recurring["next_run_at"].is_string());
    assert_eq!(recurring["last_run_at"], Value::Null);
    let job_name = recurring["job_name"].as_str().unwrap().to_owned();
    assert_eq!(dashboard.get(path).await.json(), *recurring);

    let url = dashboard.at(&format!(
        "/api/events?topics=recurring,jobs&name={job_name}"
    ));
    let (_, stream) = EventStream::open(&url, None).await;
    let mut stream = stream.expect("a stream");
    stream
        .wait_for("recurring", |list| list["items"][0]["enabled"] == true)
        .await;

    let reply = dashboard
        .post(&format!("{path}/trigger"), json!(null))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let run: JobId = reply.json()["job_id"].as_str().unwrap().parse().unwrap();
    let job = dashboard.wait_for(run, "Succeeded").await;
    assert_eq!(job["display_name"], "Greet <b>night</b>");
    assert_eq!(job["payload"], json!({ "name": "<b>night</b>" }));
    stream
        .wait_for("jobs", |page| {
            page["items"][0]["id"] == run.to_string() && page["items"][0]["state"] == "Succeeded"
        })
        .await;
    let after = dashboard.get(path).await.json();
    assert_eq!(after["schedule"], "0 3 * * *", "the schedule stays");
    assert_eq!(after["next_run_at"], recurring["next_run_at"]);

    let reply = dashboard
        .post(&format!("{path}/disable"), json!(null))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let disabled = reply.json();
    assert_eq!(disabled["enabled"], false);
    assert_eq!(disabled["disabled_reason"], "disabled by a user");
    stream
        .wait_for("recurring", |list| list["items"][0]["enabled"] == false)
        .await;
    let enabled = dashboard
        .post(&format!("{path}/enable"), json!(null))
        .await
        .json();
    assert_eq!(enabled["enabled"], true);
    assert_eq!(enabled["disabled_reason"], Value::Null);

    let reply = dashboard.delete(path).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    stream
        .wait_for("recurring", |list| list["items"] == json!([]))
        .await;
    assert_eq!(
        dashboard.get(&format!("/api/jobs/{run}")).await.json()["state"],
        "Succeeded",
        "past runs stay"
    );

    let unknown = "/api/recurring-jobs/nope";
    for reply in [
        dashboard.get(unknown).await,
        dashboard.delete(unknown).await,
        dashboard
            .post(&format!("{unknown}/trigger"), json!(null))
            .await,
        dashboard
            .post(&format!("{unknown}/enable"), json!(null))
            .await,
        dashboard
            .post(&format!("{unknown}/disable"), json!(null))
            .await,
        dashboard.delete(path).await,
    ] {
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
        let error = reply.json()["error"].as_str().unwrap().to_owned();
        assert!(error.starts_with("no recurring job with id"), "{error}");
    }
    // Mutations here are guarded like every other.
    let reply = dashboard
        .bare
        .post(&dashboard.at(&format!("{unknown}/trigger")), json!(null))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    dashboard.stop().await;
}
