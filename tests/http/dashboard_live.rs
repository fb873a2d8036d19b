//! Live updates over server-sent events and the Prometheus metrics, on each backend.

use std::time::Duration;

use crate::support::dashboard::{
    AlwaysFails, CallModel, EventStream, Greet, Options, Switch, boot, job_name,
};
use crate::support::{Backend, TestDb, start_time, wait_for_state};
use axum::http::{StatusCode, header};
use jobs::{JobServer, JobState, ManualClock};
use serde_json::json;

backend_tests!(
    events_push_what_changed_until_shutdown,
    metrics_count_jobs_by_state_and_the_servers_attempts,
    metrics_count_waiting_jobs_per_queue_and_the_oldest_age,
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
    // A manual clock: the retried job stays `Scheduled` until the scrape.
    let dashboard = boot(
        backend,
        Options {
            clock: Some(ManualClock::new(start_time())),
            ..Options::default()
        },
    )
    .await;
    let greetings = dashboard
        .jobs
        .enqueue_many(["Ada", "Grace"].map(|name| Greet { name: name.into() }))
        .await
        .unwrap();
    let failed = dashboard.summarize("x").await;
    let retried = dashboard.jobs.enqueue(AlwaysFails {}).await.unwrap();
    for &id in &greetings {
        dashboard.wait_for(id, "Succeeded").await;
    }
    let job = dashboard.wait_for(failed, "Failed").await;
    dashboard.wait_for(retried, "Scheduled").await;
    let call_model = job["name"].as_str().unwrap().to_owned();
    let greet = job_name::<Greet>();
    let always_fails = job_name::<AlwaysFails>();

    let reply = dashboard.get("/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.headers[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let scrape = Scrape::of(&reply.body);
    // From this test's store, set at the scrape: exact.
    assert_eq!(
        scrape.gauge("jobs_by_state", &[("state", "Succeeded")]),
        2.0
    );
    assert_eq!(scrape.gauge("jobs_by_state", &[("state", "Failed")]), 1.0);
    assert_eq!(
        scrape.gauge("jobs_by_state", &[("state", "Scheduled")]),
        1.0
    );
    assert_eq!(scrape.gauge("jobs_by_state", &[("state", "Awaiting")]), 0.0);
    assert_eq!(scrape.gauge("jobs_servers", &[]), 1.0);
    assert_eq!(scrape.gauge("jobs_database_up", &[]), 1.0);
    // Recorded by the servers of this process (the other tests' too, in this binary):
    // at least this test's attempts.
    let healthy = scrape.gauge("jobs_server_healthy", &[]);
    assert!(healthy == 0.0 || healthy == 1.0, "{healthy}");
    assert!(scrape.counter("jobs_server_loop_restarts_total", &[]) >= 0.0);
    assert!(scrape.counter("jobs_server_fences_total", &[]) >= 0.0);
    let attempts = |name: &str, outcome: &str| {
        scrape.counter(
            "jobs_attempts_total",
            &[("queue", "default"), ("name", name), ("outcome", outcome)],
        )
    };
    assert!(attempts(greet, "succeeded") >= 2.0);
    assert!(attempts(&call_model, "failed") >= 1.0);
    assert!(attempts(always_fails, "retried") >= 1.0);
    for family in [
        "jobs_attempt_duration_seconds",
        "jobs_queue_latency_seconds",
    ] {
        let buckets = scrape.histogram(family, &[("queue", "default"), ("name", greet)]);
        assert_eq!(buckets.len(), 17, "16 bounds and +Inf: {buckets:?}");
        assert_eq!(buckets[15].0, 3600.0);
        assert!(buckets[16].0.is_infinite());
        assert!(buckets[16].1 >= 2.0, "{family}: {buckets:?}");
        assert!(
            buckets.windows(2).all(|pair| pair[0].1 <= pair[1].1),
            "cumulative: {buckets:?}"
        );
    }
    assert!(scrape.docs.contains_key("jobs_queue_latency_seconds"));
    assert!(!reply.body.contains("No job server runs"), "{}", reply.body);
    dashboard.stop().await;
}

async fn metrics_count_waiting_jobs_per_queue_and_the_oldest_age(backend: Backend) {
    let clock = ManualClock::new(start_time());
    let dashboard = boot(
        backend,
        Options {
            clock: Some(clock.clone()),
            ..Options::no_server()
        },
    )
    .await;
    dashboard.greet("Ada").await;
    clock.advance(Duration::from_secs(90));
    dashboard.greet("Grace").await;
    clock.advance(Duration::from_secs(10));

    let scrape = Scrape::of(&dashboard.get("/metrics").await.body);
    assert_eq!(scrape.gauge("jobs_waiting", &[("queue", "default")]), 2.0);
    assert_eq!(
        scrape.gauge("jobs_oldest_waiting_age_seconds", &[("queue", "default")]),
        100.0
    );
    dashboard.stop().await;
}

async fn metrics_leave_out_server_counters_when_no_server_runs(backend: Backend) {
    let dashboard = boot(backend, Options::no_server()).await;
    dashboard.greet("Ada").await;
    let text = dashboard.get("/metrics").await.body;
    let scrape = Scrape::of(&text);
    assert_eq!(scrape.gauge("jobs_by_state", &[("state", "Enqueued")]), 1.0);
    assert_eq!(scrape.gauge("jobs_servers", &[]), 0.0);
    assert_eq!(scrape.gauge("jobs_waiting", &[("queue", "default")]), 1.0);
    // Other tests of this binary run servers in this process: only the note is
    // this dashboard's own.
    assert!(
        text.contains("# No job server runs in this process"),
        "{text}"
    );
    dashboard.stop().await;
}

/// A `/metrics` page read by a Prometheus text-format parser.
struct Scrape(prometheus_parse::Scrape);

impl std::ops::Deref for Scrape {
    type Target = prometheus_parse::Scrape;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Scrape {
    fn of(text: &str) -> Self {
        let lines = text.lines().map(|line| Ok(line.to_owned()));
        Self(prometheus_parse::Scrape::parse(lines).expect("the Prometheus text format"))
    }

    /// The one sample of `metric` with exactly these labels.
    fn sample(&self, metric: &str, labels: &[(&str, &str)]) -> &prometheus_parse::Value {
        let found: Vec<_> = self
            .samples
            .iter()
            .filter(|sample| {
                sample.metric == metric
                    && sample.labels.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(key, value)| sample.labels.get(key) == Some(*value))
            })
            .collect();
        assert_eq!(found.len(), 1, "{metric} {labels:?} in {:#?}", self.samples);
        &found[0].value
    }

    fn gauge(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        match self.sample(metric, labels) {
            prometheus_parse::Value::Gauge(value) => *value,
            other => panic!("{metric} is no gauge: {other:?}"),
        }
    }

    fn counter(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        match self.sample(metric, labels) {
            prometheus_parse::Value::Counter(value) => *value,
            other => panic!("{metric} is no counter: {other:?}"),
        }
    }

    /// The cumulative buckets: (upper bound, count).
    fn histogram(&self, metric: &str, labels: &[(&str, &str)]) -> Vec<(f64, f64)> {
        match self.sample(metric, labels) {
            prometheus_parse::Value::Histogram(buckets) => buckets
                .iter()
                .map(|bucket| (bucket.less_than, bucket.count))
                .collect(),
            other => panic!("{metric} is no histogram: {other:?}"),
        }
    }
}

/// An app that installed its own recorder gets the server's figures there. Here a
/// debugging recorder, set for this thread only (the other tests of this binary share
/// the process-wide exporter), around a server on a current-thread runtime: every task
/// of the server is polled on this thread, inside the recorder's scope.
#[test]
fn an_app_installed_recorder_receives_the_servers_figures() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let db = TestDb::new(Backend::Sqlite).await;
            let clock = ManualClock::new(start_time());
            let jobs = db.jobs(&clock).await;
            let server = JobServer::builder(jobs.clone())
                .state(Switch::default())
                .poll_interval(Duration::from_millis(50))
                .start()
                .await
                .unwrap();
            let greeted = jobs.enqueue(Greet { name: "Ada".into() }).await.unwrap();
            let failed = jobs
                .enqueue(CallModel {
                    document: "x".into(),
                })
                .await
                .unwrap();
            wait_for_state(&jobs, greeted, JobState::Succeeded).await;
            wait_for_state(&jobs, failed, JobState::Failed).await;
            server.shutdown().await;
        });
    });

    /// A figure's name, its labels (key, value) and its value.
    type Figure = (String, Vec<(String, String)>, DebugValue);
    let figures: Vec<Figure> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels = key
                .labels()
                .map(|label| (label.key().to_owned(), label.value().to_owned()))
                .collect();
            (key.name().to_owned(), labels, value)
        })
        .collect();
    let find = |name: &str, labels: &[(&str, &str)]| {
        figures
            .iter()
            .find(|(found, found_labels, _)| {
                found == name
                    && found_labels.len() == labels.len()
                    && labels.iter().all(|(key, value)| {
                        found_labels.contains(&((*key).to_owned(), (*value).to_owned()))
                    })
            })
            .map(|(_, _, value)| value)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in {figures:#?}"))
    };
    let greet = job_name::<Greet>();
    let call_model = job_name::<CallModel>();
    let by = |name| [("queue", "default"), ("name", name)];
    let outcome = |name, outcome| [("queue", "default"), ("name", name), ("outcome", outcome)];
    assert_eq!(
        find("jobs_attempts_total", &outcome(greet, "succeeded")),
        &DebugValue::Counter(1)
    );
    assert_eq!(
        find("jobs_attempts_total", &outcome(call_model, "failed")),
        &DebugValue::Counter(1)
    );
    for family in [
        "jobs_queue_latency_seconds",
        "jobs_attempt_duration_seconds",
    ] {
        match find(family, &by(greet)) {
            DebugValue::Histogram(values) => assert_eq!(values.len(), 1, "{family}"),
            other => panic!("{family}: {other:?}"),
        }
    }
    assert!(matches!(
        find("jobs_server_healthy", &[]),
        DebugValue::Gauge(_)
    ));
    assert_eq!(
        find("jobs_server_loop_restarts_total", &[]),
        &DebugValue::Counter(0)
    );
    assert_eq!(
        find("jobs_server_fences_total", &[]),
        &DebugValue::Counter(0)
    );
}

/// The connections of this test's database named `name` in `pg_stat_activity`.
#[cfg(feature = "postgres")]
async fn connections_named(db: &TestDb, name: &str) -> i64 {
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    let count = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = $1",
    )
    .bind(name)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    sqlx::Connection::close(admin).await.unwrap();
    count
}

/// Open dashboards read through the dashboard's own connections (`dashboard.pool_size`),
/// never through those the job server claims and renews with, however many pages they
/// watch.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_reads_go_through_a_pool_of_their_own() {
    let db = TestDb::new(Backend::Postgres).await;
    let mut settings = jobs::axum::JobsSettings::default();
    settings.database_url = db.url.clone();
    settings.dashboard.port = 0;
    settings.dashboard.pool_size = 2;
    let plugin = jobs::axum::JobsPlugin::builder(settings)
        .start()
        .await
        .unwrap();
    let events = format!("http://{}/api/events", plugin.dashboard_addr().unwrap());
    // Eight tabs, each on a page of its own: eight topics read side by side.
    let mut streams = Vec::new();
    for page in 0..8 {
        let url = format!("{events}?topics=jobs,servers,recurring&name=page-{page}");
        let (status, stream) = EventStream::open(&url, None).await;
        assert_eq!(status, StatusCode::OK);
        streams.push(stream.unwrap());
    }
    for stream in &mut streams {
        stream.wait_for("jobs", |_| true).await;
    }
    let dashboard = connections_named(&db, "jobs-dashboard").await;
    assert!(
        (1..=2).contains(&dashboard),
        "{dashboard} dashboard connections, for a pool of 2"
    );
    for _ in 0..20 {
        let dashboard = connections_named(&db, "jobs-dashboard").await;
        assert!(dashboard <= 2, "{dashboard} dashboard connections");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        connections_named(&db, "jobs").await >= 1,
        "the job server has connections of its own"
    );
    drop(streams);
    plugin.shutdown().await;
}
