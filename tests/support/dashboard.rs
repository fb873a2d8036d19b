//! What the dashboard tests share: the plugin booted on a fresh database with its
//! dashboard on a free port, jobs that succeed, fail with a source chain or wait at a
//! gate, and HTTP clients with and without the header the dashboard's script sends.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Request, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jobs::axum::{JobsPlugin, JobsSettings};
use jobs::prelude::*;
use jobs::{JobId, Jobs, ManualClock};

use super::http::{Http, Reply};
use super::{Backend, Probe, TestDb};

/// Off: `call_model` fails. On: it succeeds.
#[derive(Clone, Default)]
pub struct Switch(Arc<AtomicBool>);

impl Switch {
    pub fn turn_on(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Returns its greeting: the job's result.
#[job(display = "Greet {name}")]
pub async fn greet(name: String) -> Result<String, std::convert::Infallible> {
    Ok(format!("Hello, {name}!"))
}

/// Fails for good (no retries) with a two-source chain until the switch is on.
#[job(retries = 0, display = "Summarize {document}")]
pub async fn call_model(State(switch): State<Switch>, document: String) -> anyhow::Result<()> {
    if switch.0.load(Ordering::SeqCst) {
        return Ok(());
    }
    Err(anyhow::anyhow!("connection reset by peer")
        .context("the model API timed out")
        .context(format!("could not summarize {document}")))
}

/// Fails twice in all: the first failure is retried.
#[job(retries = 1, display = "Always fails")]
pub async fn always_fails() -> anyhow::Result<()> {
    Err(anyhow::anyhow!("disk full").context("cannot write the report"))
}

/// Panics on its only attempt, at [`PANIC_LINE`].
#[job(retries = 0, display = "Parse the invoice")]
pub async fn parse_invoice() {
    panic!("the invoice has no total");
}

/// The line of the `panic!` in [`parse_invoice`], which its failure names.
pub const PANIC_LINE: u32 = line!() - 4;
/// This file, as the compiler names it (and so the panic's location).
pub const PANIC_FILE: &str = file!();

/// Runs until the test opens the probe's gate.
#[job(display = "Wait at the gate")]
pub async fn wait_at_gate(State(probe): State<Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
    probe.gate.acquire().await.expect("gate open").forget();
}

/// The stored name of a job type, as `/api/jobs?name=` and `/metrics` show it.
pub fn job_name<J: jobs::Job>() -> &'static str {
    J::DESCRIPTOR.name()
}

/// How a test's plugin runs.
pub struct Options {
    /// Whether the plugin runs a worker server (otherwise jobs stay where they are put).
    pub server: bool,
    /// A clock to read instead of the system's.
    pub clock: Option<ManualClock>,
    /// Basic auth for the dashboard.
    pub credentials: Option<(&'static str, &'static str)>,
}

impl Options {
    /// No worker server: jobs stay where the test puts them.
    pub fn no_server() -> Self {
        Self {
            server: false,
            ..Self::default()
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            server: true,
            clock: None,
            credentials: None,
        }
    }
}

/// A running plugin and clients for its dashboard.
pub struct Dashboard {
    pub jobs: Jobs,
    /// `http://127.0.0.1:port`, no trailing slash.
    pub url: String,
    /// Sends `X-Jobs-Csrf: 1`, as the dashboard's script does.
    pub http: Http,
    /// Sends nothing but what a test adds.
    pub bare: Http,
    pub switch: Switch,
    pub probe: Probe,
    pub backend: Backend,
    plugin: JobsPlugin,
    _db: TestDb,
}

pub async fn boot(backend: Backend, options: Options) -> Dashboard {
    let db = TestDb::new(backend).await;
    let mut settings = JobsSettings::default();
    settings.database_url = db.url.clone();
    settings.dashboard.port = 0;
    settings.background_job_server.enabled = options.server;
    settings.background_job_server.poll_interval = Duration::from_millis(200);
    settings.background_job_server.shutdown_grace = Duration::from_secs(2);
    if let Some((username, password)) = options.credentials {
        settings.dashboard.username = Some(username.to_owned());
        settings.dashboard.password = Some(password.to_owned());
    }
    let switch = Switch::default();
    let probe = Probe::new();
    let mut builder = JobsPlugin::builder(settings)
        .state(switch.clone())
        .state(probe.clone());
    if let Some(clock) = &options.clock {
        builder = builder.jobs(db.jobs(clock).await);
    }
    let plugin = builder.start().await.expect("the plugin starts");
    let url = format!("http://{}", plugin.dashboard_addr().expect("a dashboard"));
    let bare = Http::new();
    Dashboard {
        jobs: plugin.jobs(),
        url,
        http: bare.with_header("x-jobs-csrf", "1"),
        bare,
        switch,
        probe,
        backend,
        plugin,
        _db: db,
    }
}

impl Dashboard {
    /// The URL of the test's database.
    pub fn database_url(&self) -> &str {
        &self._db.url
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Enqueues `Greet { name }`.
    pub async fn greet(&self, name: &str) -> JobId {
        self.jobs
            .enqueue(Greet { name: name.into() })
            .await
            .expect("enqueue")
    }

    /// Enqueues `CallModel { document }`, which fails until the switch is on.
    pub async fn summarize(&self, document: &str) -> JobId {
        self.jobs
            .enqueue(CallModel {
                document: document.into(),
            })
            .await
            .expect("enqueue")
    }

    /// Enqueues `ParseInvoice`, which panics.
    pub async fn parse_invoice(&self) -> JobId {
        self.jobs.enqueue(ParseInvoice {}).await.expect("enqueue")
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.http.get(&self.at(path)).await
    }

    pub async fn post(&self, path: &str, json: serde_json::Value) -> Reply {
        self.http.post(&self.at(path), json).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.http.delete(&self.at(path)).await
    }

    /// Polls the API until the job is in `state`; panics after 20 s.
    pub async fn wait_for(&self, id: JobId, state: &str) -> serde_json::Value {
        self.http
            .wait_for_job_state(&self.at(&format!("/api/jobs/{id}")), state)
            .await
    }

    /// Stops the plugin gracefully and waits for it.
    pub async fn stop(self) {
        self.plugin.shutdown().await;
    }

    /// Starts stopping the plugin without waiting.
    pub fn trigger_shutdown(&self) {
        self.plugin.trigger_shutdown();
    }
}

/// A server-sent event stream of the dashboard, read event by event.
pub struct EventStream {
    body: BoxBody<Bytes, String>,
    buffer: String,
    /// Events read while waiting for another, oldest first.
    skipped: Vec<(String, serde_json::Value)>,
}

impl EventStream {
    /// Opens `url` (with an `Authorization` header if given); the answer's status and,
    /// when it is 200, the stream.
    pub async fn open(url: &str, authorization: Option<&str>) -> (StatusCode, Option<Self>) {
        let headers: Vec<(&str, &str)> = authorization
            .map(|value| ("authorization", value))
            .into_iter()
            .collect();
        let (status, _, stream) = Self::open_with(url, &headers).await;
        (status, stream)
    }

    /// Opens `url` with these request headers; the answer's status and headers and,
    /// when it is 200, the stream.
    pub async fn open_with(
        url: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, axum::http::HeaderMap, Option<Self>) {
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let mut request = Request::get(url).header(header::ACCEPT, "text/event-stream");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = client
            .request(request.body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap_or_else(|error| panic!("GET {url}: {error}"));
        let status = response.status();
        let answer_headers = response.headers().clone();
        if status != StatusCode::OK {
            return (status, answer_headers, None);
        }
        let body = response
            .into_body()
            .map_err(|error| error.to_string())
            .boxed();
        (
            status,
            answer_headers,
            Some(Self {
                body,
                buffer: String::new(),
                skipped: Vec::new(),
            }),
        )
    }

    /// The next event's name and data; `None` when the stream has ended.
    pub async fn next(&mut self) -> Option<(String, String)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push(value.strip_prefix(' ').unwrap_or(value));
                    }
                }
                if data.is_empty() {
                    continue; // `retry:` or a keep-alive comment
                }
                return Some((name, data.join("\n")));
            }
            let frame = self.body.frame().await?.expect("the stream reads");
            if let Ok(data) = frame.into_data() {
                self.buffer
                    .push_str(std::str::from_utf8(&data).expect("UTF-8"));
            }
        }
    }

    /// Waits (20 s at most) for an event named `name` whose JSON satisfies `condition`,
    /// whether it came before or after events waited for earlier.
    pub async fn wait_for(
        &mut self,
        name: &str,
        condition: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        if let Some(at) = self
            .skipped
            .iter()
            .position(|(event, value)| event == name && condition(value))
        {
            return self.skipped.remove(at).1;
        }
        let wait = async {
            loop {
                let (event, data) = self.next().await.expect("the stream goes on");
                let value: serde_json::Value = serde_json::from_str(&data).unwrap();
                if event == name && condition(&value) {
                    return value;
                }
                self.skipped.push((event, value));
            }
        };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .unwrap_or_else(|_| panic!("no `{name}` event as expected within 20 s"))
    }
}
