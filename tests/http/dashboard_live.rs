//! Live updates over server-sent events and the Prometheus metrics, on each backend.

use std::time::Duration;

use crate::support::Backend;
use crate::support::dashboard::{EventStream, Greet, Options, boot, job_name};
use axum::http::{StatusCode, header};
use serde_json::json;

backend_tests!(
    events_push_what_changed_until_shutdown,
    metrics_count_jobs_by_state_and_the_servers_attempts,
    metrics_leave_out_server_counters_when_no_server_runs,
);

async fn events_push_what_changed_until_shutdown(backend: Backend) {
    let dashboard = boot(backend, Options::default()).await;
    let id = dashboard.summarize("deck").await;
    dashboard.wait_for(id, "Failed").await;

    let url = dashboard.at(&format!(
        "/api/events?topics=job,jobs,servers,throughput&id={id}&state=Failed"
    ));
    let (status, stream) = EventStream::open(&url, None).await;
    assert_eq!(status, StatusCode::OK);
    let mut stream = stream.unwrap();
    let health = stream.wait_for("health", |_| true).await;
    assert_eq!(
        health,
        json!({ "healthy": true, "leases_renewed": true, "restarts": 0 })
    );
    let stats = stream.wait_for("stats", |_| true).await;
    assert_eq!(stats["counts"]["Failed"], 1);
    assert_eq!(stats.get("throughput"), None, "polled apart");
    let throughput = stream.wait_for("throughput", |_| true).await;
    assert_eq!(throughput.as_array().unwrap().len(), 60);
    let servers = stream.wait_for("servers", |_| true).await;
    assert_eq!(servers["items"].as_array().unwrap().len(), 1);
    let failed = stream.wait_for("jobs", |_| true).await;
    assert_eq!(failed["items"][0]["id"], id.to_string());
    let job = stream.wait_for("job", |_| true).await;
    assert_eq!(job["state"], "Failed");
    assert_eq!(
        job["attempts"][0]["error"]["message"],
        "could not summarize deck"
    );

    // A requeue from elsewhere: the job is seen running again and succeeding.
    dashboard.switch.turn_on();
    let reply = dashboard
        .post(&format!("/api/jobs/{id}/requeue"), json!(null))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    stream
        .wait_for("jobs", |page| page["items"] == json!([]))
        .await;
    stream
        .wait_for("stats", |stats| stats["counts"]["Succeeded"] == 1)
        .await;
    let job = stream
        .wait_for("job", |job| job["state"] == "Succeeded")
        .await;
    assert_eq!(job["attempts"][1]["outcome"], "succeeded");

    for (query, needle) in [
        ("topics=bogus", "unknown topic \"bogus\""),
        ("topics=job", "`job` needs the job's `id`"),
        ("topics=job&id=7", "is not a job id"),
        ("topics=jobs&state=Exploded", "state: unknown job state"),
    ] {
        let reply = dashboard.get(&format!("/api/events?{query}")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        let error = reply.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(needle), "{query}: {error}");
    }

    // Shutting down ends open streams, so a browser tab does not hold the shutdown up.
    dashboard.trigger_shutdown();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while stream.next().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the stream ends at shutdown");
    dashboard.stop().await;
}

async fn metrics_count_jobs_by_state_and_the_servers_attempts(backend: Backend) {
    let dashboard = boot(backend, Options::default()).await;
    let greetings = dashboard
        .jobs
        .enqueue_many(["Ada", "Grace"].map(|name| Greet { name: name.into() }))
        .await
        .unwrap();
    let failed = dashboard.summarize("x").await;
    for &id in &greetings {
        dashboard.wait_for(id, "Succeeded").await;
    }
    let job = dashboard.wait_for(failed, "Failed").await;
    let call_model = job["name"].as_str().unwrap().to_owned();
    let greet = job_name::<Greet>();

    let reply = dashboard.get("/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.headers[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = reply.body;
    for line in [
        "# TYPE jobs_by_state gauge".to_owned(),
        "jobs_by_state{state=\"Succeeded\"} 2".to_owned(),
        "jobs_by_state{state=\"Failed\"} 1".to_owned(),
        "jobs_by_state{state=\"Awaiting\"} 0".to_owned(),
        "jobs_servers 1".to_owned(),
        "jobs_database_up 1".to_owned(),
        "# TYPE jobs_server_healthy gauge".to_owned(),
        "jobs_server_healthy 1".to_owned(),
        "jobs_server_loop_restarts_total 0".to_owned(),
        "# TYPE jobs_processed_total counter".to_owned(),
        format!("jobs_processed_total{{name=\"{greet}\"}} 2"),
        format!("jobs_succeeded_total{{name=\"{greet}\"}} 2"),
        format!("jobs_failed_total{{name=\"{greet}\"}} 0"),
        format!("jobs_processed_total{{name=\"{call_model}\"}} 1"),
        format!("jobs_failed_total{{name=\"{call_model}\"}} 1"),
        "# TYPE jobs_attempt_duration_seconds histogram".to_owned(),
        format!("jobs_attempt_duration_seconds_bucket{{name=\"{greet}\",le=\"+Inf\"}} 2"),
        format!("jobs_attempt_duration_seconds_count{{name=\"{greet}\"}} 2"),
        format!("jobs_attempt_duration_seconds_bucket{{name=\"{greet}\",le=\"3600\"}} 2"),
        "# TYPE jobs_queue_latency_seconds histogram".to_owned(),
        format!("jobs_queue_latency_seconds_count{{name=\"{greet}\"}} 2"),
        format!("jobs_queue_latency_seconds_bucket{{name=\"{greet}\",le=\"+Inf\"}} 2"),
    ] {
        assert!(
            text.lines().any(|candidate| candidate == line),
            "no line {line:?} in\n{text}"
        );
    }
    let buckets: Vec<u64> = text
        .lines()
        .filter(|line| {
            line.starts_with(&format!(
                "jobs_attempt_duration_seconds_bucket{{name=\"{greet}\""
            ))
        })
        .map(|line| line.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(buckets.len(), 17, "16 bounds and +Inf");
    assert!(
        buckets.windows(2).all(|pair| pair[0] <= pair[1]),
        "cumulative: {buckets:?}"
    );
    assert!(!text.contains("No job server runs"), "{text}");
    dashboard.stop().await;
}

async fn metrics_leave_out_server_counters_when_no_server_runs(backend: Backend) {
    let dashboard = boot(backend, Options::no_server()).await;
    dashboard.greet("Ada").await;
    let text = dashboard.get("/metrics").await.body;
    assert!(
        text.contains("jobs_by_state{state=\"Enqueued\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("jobs_servers 0\n"), "{text}");
    assert!(
        text.contains("# No job server runs in this process"),
        "{text}"
    );
    assert!(!text.contains("jobs_processed_total{"), "{text}");
    assert!(!text.contains("jobs_server_healthy "), "{text}");
    assert!(
        !text.contains("jobs_attempt_duration_seconds_bucket"),
        "{text}"
    );
    dashboard.stop().await;
}
