//! A request's OpenTelemetry trace holds the jobs it enqueued and their runs in another
//! process: the HTTP request span of `tower-http`'s `TraceLayer` around an axum
//! handler, the `job.enqueue` span, and the `job.run` span of the worker process, one
//! trace, the run a child of the enqueue. Both processes export to an in-memory exporter of the real SDK; the
//! worker writes its finished spans to a file the test reads.

#![cfg(feature = "opentelemetry")]

use std::collections::HashMap;
use std::time::Duration;

use crate::support::http::Http;
use crate::support::process::{self, Child};
use crate::support::{Backend, TestDb, wait_for_state};
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use jobs::prelude::*;
use jobs::{JobId, JobServer, JobState, Jobs};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tower_http::trace::{DefaultMakeSpan, TraceLayer};
use tracing_subscriber::layer::SubscriberExt;

/// Given to the worker: the file it writes its finished spans to.
const SPANS_VAR: &str = "JOBS_TEST_SPANS_FILE";

#[job(retries = 0, display = "Report {n}")]
async fn report(n: u32) -> Result<(), String> {
    tracing::info!(n, "writing the report");
    Ok(())
}

/// A span as exported: ids in hex, the job it ran or enqueued (`job.id`), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Exported {
    name: String,
    trace_id: String,
    span_id: String,
    parent_id: String,
    job: String,
}

impl Exported {
    fn of(span: &SpanData) -> Self {
        let job = span
            .attributes
            .iter()
            .find(|attribute| attribute.key.as_str() == "job.id")
            .map(|attribute| attribute.value.to_string())
            .unwrap_or_default();
        Self {
            name: span.name.to_string(),
            trace_id: span.span_context.trace_id().to_string(),
            span_id: span.span_context.span_id().to_string(),
            parent_id: span.parent_span_id.to_string(),
            job,
        }
    }

    fn line(&self) -> String {
        [
            &self.name,
            &self.trace_id,
            &self.span_id,
            &self.parent_id,
            &self.job,
        ]
        .map(String::as_str)
        .join("\t")
    }

    fn parse(line: &str) -> Self {
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, trace_id, span_id, parent_id, job] = fields[..] else {
            panic!("not a span line: {line:?}");
        };
        Self {
            name: name.to_owned(),
            trace_id: trace_id.to_owned(),
            span_id: span_id.to_owned(),
            parent_id: parent_id.to_owned(),
            job: job.to_owned(),
        }
    }
}

/// An OpenTelemetry pipeline into memory, as a `tracing` subscriber.
fn pipeline(
    service: &'static str,
) -> (InMemorySpanExporter, impl tracing::Subscriber + Send + Sync) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer(service)));
    (exporter, subscriber)
}

/// The worker process: runs jobs until its parent closes its stdin, then writes every
/// span it finished to the file it was given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child() {
    if process::role().as_deref() != Some("traced-worker") {
        return;
    }
    let (exporter, subscriber) = pipeline("worker");
    // This process runs only this test.
    tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
    let jobs = Jobs::connect(&process::database_url())
        .await
        .expect("child connects");
    let server = JobServer::builder(jobs).poll_interval(Duration::from_millis(100));
    process::serve_until_parent_gone(server).await;
    let spans = exporter.get_finished_spans().expect("finished spans");
    let lines: Vec<String> = spans.iter().map(|span| Exported::of(span).line()).collect();
    let path = std::env::var(SPANS_VAR).expect("a spans file is given");
    std::fs::write(path, lines.join("\n")).expect("spans written");
}

// One thread, so that the subscriber set for this test sees every span of its process.
#[tokio::test(flavor = "current_thread")]
async fn a_request_trace_holds_the_enqueue_and_the_run_in_another_process() {
    let (exporter, subscriber) = pipeline("web");
    let _default = tracing::subscriber::set_default(subscriber);
    let db = TestDb::new(Backend::Postgres).await;
    let jobs = Jobs::connect(&db.url).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spans_file = dir.path().join("worker-spans.tsv");
    let worker = Child::spawn(
        module_path!(),
        "traced-worker",
        &db.url,
        &[(SPANS_VAR, spans_file.to_str().unwrap())],
    );

    // An app's handler behind the usual trace layer, served over TCP: one job through
    // `enqueue` (its own `job.enqueue` span), one through `enqueue_many` (in the
    // request's span itself).
    async fn handler(State(jobs): State<Jobs>) -> Json<(JobId, JobId)> {
        let single = jobs.enqueue(Report { n: 1 }).await.unwrap();
        let batched = jobs.enqueue_many([Report { n: 2 }]).await.unwrap();
        Json((single, batched[0]))
    }
    let app = Router::new()
        .route("/reports", post(handler))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(tracing::Level::INFO)),
        )
        .with_state(jobs.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let served = tokio::spawn(async move { axum::serve(listener, app).await });
    let reply = Http::new()
        .post(&format!("http://{address}/reports"), serde_json::json!({}))
        .await;
    assert_eq!(reply.status, axum::http::StatusCode::OK, "{}", reply.body);
    let (single, batched): (JobId, JobId) = serde_json::from_value(reply.json()).unwrap();
    served.abort();
    wait_for_state(&jobs, single, JobState::Succeeded).await;
    wait_for_state(&jobs, batched, JobState::Succeeded).await;
    worker.stop(Duration::from_secs(20)).await;

    let mut spans: Vec<Exported> = exporter
        .get_finished_spans()
        .unwrap()
        .iter()
        .map(Exported::of)
        .collect();
    let web_spans = spans.len();
    let written = std::fs::read_to_string(&spans_file).expect("the worker wrote its spans");
    spans.extend(written.lines().map(Exported::parse));
    let one = |name: &str, job: &str| {
        let found: Vec<&Exported> = spans
            .iter()
            .filter(|span| span.name == name && span.job == job)
            .collect();
        assert_eq!(found.len(), 1, "one {name} span of job {job:?}: {spans:#?}");
        found[0].clone()
    };
    let request = one("request", "");
    let enqueue = one("job.enqueue", &single.to_string());
    let run = one("job.run", &single.to_string());
    let batched_run = one("job.run", &batched.to_string());
    assert!(
        spans[..web_spans].contains(&enqueue) && spans[web_spans..].contains(&run),
        "the enqueue is exported by the web process, the run by the worker"
    );

    let traces: HashMap<&str, Vec<&str>> = spans.iter().fold(HashMap::new(), |mut traces, span| {
        traces
            .entry(span.trace_id.as_str())
            .or_default()
            .push(span.name.as_str());
        traces
    });
    for span in [&enqueue, &run, &batched_run] {
        assert_eq!(
            span.trace_id, request.trace_id,
            "{} is in the request's trace: {traces:#?}",
            span.name
        );
    }
    assert_eq!(
        enqueue.parent_id, request.span_id,
        "the enqueue is in the request"
    );
    assert_eq!(
        run.parent_id, enqueue.span_id,
        "the run continues its enqueue"
    );
    assert_eq!(
        batched_run.parent_id, request.span_id,
        "a job enqueued without its own span continues the caller's"
    );
}
