//! The dashboard's batch routes over HTTP on each backend: a batch's progress with a
//! page of its members, its live topic, a member's link to it, and requeue and delete
//! of the batch as one.

use crate::support::Backend;
use crate::support::dashboard::{EventStream, Greet, Options, boot};
use axum::http::StatusCode;
use jobs::BatchId;
use serde_json::json;

backend_tests!(shows_a_batch_with_its_members_and_acts_on_it_as_one);

async fn shows_a_batch_with_its_members_and_acts_on_it_as_one(backend: Backend) {
    let dashboard = boot(backend, Options::no_server()).await;
    let id = dashboard
        .jobs
        .batch()
        .label("greetings")
        .add_many(["Ada", "Grace", "Edsger"].map(|name| Greet { name: name.into() }))
        .then(Greet {
            name: "everyone".into(),
        })
        .await
        .unwrap();

    let batch = dashboard.get(&format!("/api/batches/{id}")).await.json();
    assert_eq!(batch["id"], id.to_string());
    assert_eq!(batch["label"], "greetings");
    assert_eq!(
        (batch["total"].as_u64(), batch["waiting"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(batch["members"]["items"].as_array().unwrap().len(), 3);
    let then_id = batch["then_id"].as_str().unwrap().to_owned();

    let page = dashboard
        .get(&format!("/api/batches/{id}?limit=2"))
        .await
        .json();
    assert_eq!(page["members"]["items"].as_array().unwrap().len(), 2);
    let next = page["members"]["next"].as_str().unwrap();
    let rest = dashboard
        .get(&format!("/api/batches/{id}?limit=2&after={next}"))
        .await
        .json();
    assert_eq!(rest["members"]["items"].as_array().unwrap().len(), 1);

    let member = page["members"]["items"][0]["id"].as_str().unwrap();
    let job = dashboard.get(&format!("/api/jobs/{member}")).await.json();
    assert_eq!(job["batch_id"], id.to_string(), "a member names its batch");

    let url = dashboard.at(&format!("/api/events?topics=batch&id={id}"));
    let (status, stream) = EventStream::open(&url, None).await;
    assert_eq!(status, StatusCode::OK);
    let mut stream = stream.expect("a stream");
    let live = stream.wait_for("batch", |batch| batch["total"] == 3).await;
    assert_eq!(live["members"]["items"].as_array().unwrap().len(), 3);

    let reply = dashboard
        .post(&format!("/api/batches/{id}/requeue"), json!(null))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["count"], 0, "nothing failed");
    let reply = dashboard.delete(&format!("/api/batches/{id}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["count"], 3);
    let batch = dashboard.get(&format!("/api/batches/{id}")).await.json();
    assert_eq!(batch["deleted"], 3);
    let fan_in = dashboard.get(&format!("/api/jobs/{then_id}")).await.json();
    assert_eq!(fan_in["state"], "Deleted");

    let unknown = BatchId::new();
    for reply in [
        dashboard.get(&format!("/api/batches/{unknown}")).await,
        dashboard.delete(&format!("/api/batches/{unknown}")).await,
        dashboard
            .post(&format!("/api/batches/{unknown}/requeue"), json!(null))
            .await,
    ] {
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
        assert_eq!(reply.json()["error"], format!("no batch with id {unknown}"));
    }
    let reply = dashboard.get("/api/batches/nope").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let page = dashboard.get(&format!("/batches/{id}")).await;
    assert_eq!(page.status, StatusCode::OK, "the page's shell");
    dashboard.stop().await;
}
