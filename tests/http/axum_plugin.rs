//! The axum plugin end to end: an app boots with it on a real TCP port, a handler
//! enqueues, the job runs, the dashboard's API answers over HTTP, and a graceful
//! shutdown never loses a job. Every test has its own SQLite file and free ports.

use std::time::Duration;

use crate::support::http::{Http, Reply};
use crate::support::{Backend, Probe, TestDb, wait_for_state};
use axum::Router;
use axum::http::{StatusCode, header};
use jobs::axum::{JobsPlugin, JobsSettings};
use jobs::prelude::*;
use jobs::{JobId, Jobs};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

#[job(display = "Greet {name}")]
async fn greet(State(probe): State<Probe>, ctx: JobContext, name: String) {
    let _run = probe.start(ctx.id());
    probe.note(name);
}

/// Runs until the test opens the probe's gate.
#[job(display = "Wait at the gate")]
async fn wait_at_gate(State(probe): State<Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
    probe.gate.acquire().await.expect("gate open").forget();
    probe.note("passed the gate");
}

/// The app's own routes: handlers take the client as `State<Jobs>`.
mod app {
    use axum::extract::{FromRef, State};
    use axum::routing::post;
    use axum::{Json, Router};
    use jobs::{JobId, Jobs};
    use serde_json::{Value, json};

    use super::{Greet, WaitAtGate};

    pub(crate) fn routes<S>() -> Router<S>
    where
        Jobs: FromRef<S>,
        S: Clone + Send + Sync + 'static,
    {
        Router::new()
            .route("/greet", post(greet))
            .route("/gate", post(gate))
    }

    async fn greet(State(jobs): State<Jobs>, Json(body): Json<Value>) -> Json<Value> {
        let name = body["name"].as_str().unwrap_or("nobody").to_owned();
        created(jobs.enqueue(Greet { name }).await.expect("enqueue"))
    }

    async fn gate(State(jobs): State<Jobs>) -> Json<Value> {
        created(jobs.enqueue(WaitAtGate {}).await.expect("enqueue"))
    }

    fn created(id: JobId) -> Json<Value> {
        Json(json!({ "job_id": id }))
    }
}

/// An app with the plugin, serving on a free port.
struct TestApp {
    plugin: JobsPlugin,
    jobs: Jobs,
    app_url: String,
    dashboard_url: String,
    server: JoinHandle<()>,
    http: Http,
}

/// Settings for a test: its database, free ports, a short poll interval.
fn settings(db: &TestDb) -> JobsSettings {
    let mut settings = JobsSettings::default();
    settings.database_url = db.url.clone();
    settings.dashboard.port = 0;
    settings.background_job_server.poll_interval = Duration::from_millis(200);
    settings
}

async fn boot(settings: JobsSettings, probe: &Probe) -> TestApp {
    let plugin = JobsPlugin::builder(settings)
        .state(probe.clone())
        .start()
        .await
        .expect("the plugin starts");
    let routes = Router::new().merge(app::routes()).with_state(plugin.jobs());
    serve(plugin, routes).await
}

/// Serves `routes` the way an app does: with the plugin's shutdown signal.
async fn serve(plugin: JobsPlugin, routes: Router) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_url = format!("http://{}", listener.local_addr().unwrap());
    let signal = plugin.shutdown_signal();
    let server = tokio::spawn(async move {
        axum::serve(listener, routes)
            .with_graceful_shutdown(signal)
            .await
            .expect("the app serves");
    });
    let dashboard_url = plugin
        .dashboard_addr()
        .map(|addr| format!("http://{addr}"))
        .unwrap_or_default();
    TestApp {
        jobs: plugin.jobs(),
        plugin,
        app_url,
        dashboard_url,
        server,
        http: Http::new(),
    }
}

impl TestApp {
    /// POSTs to the app and returns the id of the job the handler enqueued.
    async fn enqueue(&self, path: &str, body: serde_json::Value) -> JobId {
        let reply = self
            .http
            .post(&format!("{}{path}", self.app_url), body)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.json()["job_id"].as_str().unwrap().parse().unwrap()
    }

    async fn dashboard(&self, path: &str) -> Reply {
        self.http
            .get(&format!("{}{path}", self.dashboard_url))
            .await
    }

    /// Polls the dashboard's API until the job is in `state`; panics after 20 s.
    async fn wait_for_http_state(&self, id: JobId, state: &str) -> serde_json::Value {
        let url = format!("{}/api/jobs/{id}", self.dashboard_url);
        self.http.wait_for_job_state(&url, state).await
    }

    /// Stops the app and the plugin, as `main` does after `serve` returns.
    async fn stop(self) {
        self.plugin.trigger_shutdown();
        self.server.await.unwrap();
        self.plugin.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_enqueued_by_a_handler_succeeds() {
    let db = TestDb::new(Backend::Sqlite).await;
    let probe = Probe::new();
    let app = boot(settings(&db), &probe).await;

    let id = app.enqueue("/greet", json!({ "name": "Ada" })).await;
    let job = app.wait_for_http_state(id, "Succeeded").await;
    assert_eq!(job["display_name"], "Greet Ada");
    assert_eq!(job["attempt"], 1);
    assert_eq!(job["payload"], json!({ "name": "Ada" }));
    assert_eq!(probe.runs(id), 1);
    assert_eq!(probe.notes(), ["Ada"]);

    let stats = app.dashboard("/api/stats").await.json();
    assert_eq!(stats["counts"]["Succeeded"], 1);
    assert_eq!(stats["counts"]["Failed"], 0, "every state is listed");
    assert_eq!(stats["total"], 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_running_job_finish_within_the_grace_period() {
    let db = TestDb::new(Backend::Sqlite).await;
    let probe = Probe::new();
    let mut settings = settings(&db);
    settings.background_job_server.shutdown_grace = Duration::from_secs(15);
    let app = boot(settings, &probe).await;
    let jobs = app.jobs.clone();
    let app_url = app.app_url.clone();
    let http = app.http.clone();

    let id = app.enqueue("/gate", json!({})).await;
    wait_for_state(&jobs, id, JobState::Processing).await;

    // The signal fires (as Ctrl-C would); the job finishes a little later, within grace.
    app.plugin.trigger_shutdown();
    let stopped = tokio::spawn(app.stop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(probe.running(), 1, "the job is still running");
    // Claiming has stopped: a job enqueued now waits for the next start.
    let later = jobs
        .enqueue(Greet {
            name: "later".into(),
        })
        .await
        .unwrap();
    probe.gate.add_permits(1);
    stopped.await.unwrap();

    let info = jobs.get(id).await.unwrap();
    assert_eq!(info.state, JobState::Succeeded, "{:#?}", info.history);
    assert_eq!(probe.runs(id), 1);
    assert_eq!(jobs.get(later).await.unwrap().state, JobState::Enqueued);
    assert_eq!(probe.runs(later), 0);
    assert!(
        http.try_send(axum::http::Method::GET, &app_url, None)
            .await
            .is_err(),
        "the app stopped listening"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_a_job_past_the_grace_period_and_the_next_start_runs_it() {
    let db = TestDb::new(Backend::Sqlite).await;
    let probe = Probe::new();
    let mut short_grace = settings(&db);
    short_grace.background_job_server.shutdown_grace = Duration::from_millis(200);
    let app = boot(short_grace, &probe).await;
    let jobs = app.jobs.clone();

    let id = app.enqueue("/gate", json!({})).await;
    wait_for_state(&jobs, id, JobState::Processing).await;
    app.stop().await;
    let info = jobs.get(id).await.unwrap();
    assert_eq!(info.state, JobState::Enqueued, "released, not lost");
    assert_eq!(info.owner, None);

    // The app starts again on the same database: the job runs to the end.
    probe.gate.add_permits(1);
    let app = boot(settings(&db), &probe).await;
    app.wait_for_http_state(id, "Succeeded").await;
    assert_eq!(probe.notes(), ["passed the gate"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_api_lists_shows_and_deletes_jobs() {
    let db = TestDb::new(Backend::Sqlite).await;
    let probe = Probe::new();
    let mut settings = settings(&db);
    settings.background_job_server.enabled = false; // jobs stay where the test puts them
    let app = boot(settings, &probe).await;

    let id = app
        .enqueue("/greet", json!({ "name": "<script>alert('x')</script>" }))
        .await;
    let other = app.enqueue("/greet", json!({ "name": "Grace" })).await;

    let page = app
        .dashboard("/api/jobs?state=Enqueued&limit=1")
        .await
        .json();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], other.to_string(), "newest first");
    let next = page["next"].as_str().expect("a next page");
    let page = app
        .dashboard(&format!("/api/jobs?state=enqueued&after={next}"))
        .await
        .json();
    assert_eq!(page["items"][0]["id"], id.to_string());
    assert_eq!(page["next"], serde_json::Value::Null);
    let page = app.dashboard("/api/jobs?state=Succeeded").await.json();
    assert_eq!(page["items"], json!([]));

    let job = app.dashboard(&format!("/api/jobs/{id}")).await.json();
    assert_eq!(job["display_name"], "Greet <script>alert('x')</script>");
    assert_eq!(job["history"][0]["state"], "Enqueued");

    for (path, needle) in [
        (
            "/api/jobs?state=Exploded",
            "state: unknown job state `Exploded`",
        ),
        ("/api/jobs?limit=many", "limit: expected a whole number"),
        ("/api/jobs?after=7", "after: \"7\" is not a job id"),
        ("/api/jobs/not-an-id", "is not a job id"),
    ] {
        let reply = app.dashboard(path).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        let error = reply.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(needle), "{path}: {error}");
    }
    let unknown = JobId::new();
    let reply = app.dashboard(&format!("/api/jobs/{unknown}")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["error"], format!("no job with id {unknown}"));

    // The page is a document that draws itself from the API: no job data in it.
    // (tests/http/dashboard_browser.rs checks in a browser that names render as text.)
    let page = app.dashboard("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(!page.body.contains("Greet"), "{}", page.body);

    // Mutations carry the header the dashboard's script sends (see dashboard_security.rs).
    let http = app.http.with_header("x-jobs-csrf", "1");
    let url = format!("{}/api/jobs/{id}", app.dashboard_url);
    assert_eq!(http.delete(&url).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.dashboard(&format!("/api/jobs/{id}")).await.json()["state"],
        "Deleted"
    );
    let url = format!("{}/api/jobs/{unknown}", app.dashboard_url);
    assert_eq!(http.delete(&url).await.status, StatusCode::NOT_FOUND);
    let stats = app.dashboard("/api/stats").await.json();
    assert_eq!(stats["counts"]["Enqueued"], 1);
    assert_eq!(stats["counts"]["Deleted"], 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_asks_for_basic_auth_when_a_password_is_set() {
    let db = TestDb::new(Backend::Sqlite).await;
    let probe = Probe::new();
    let mut settings = settings(&db);
    settings.dashboard.username = Some("admin".into());
    settings.dashboard.password = Some("s3cret".into());
    let app = boot(settings, &probe).await;

    for path in ["/", "/api/stats", "/api/jobs", "/api/jobs/x", "/nowhere"] {
        let reply = app.dashboard(path).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
        let challenge = reply.headers[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.starts_with("Basic realm="), "{challenge}");
    }
    let url = format!("{}/api/stats", app.dashboard_url);
    // "admin:wrong" and "admin:s3cret", base64-encoded.
    let wrong = app.http.with_authorization("Basic YWRtaW46d3Jvbmc=");
    assert_eq!(wrong.get(&url).await.status, StatusCode::UNAUTHORIZED);
    let right = app.http.with_authorization("Basic YWRtaW46czNjcmV0");
    assert_eq!(right.get(&url).await.status, StatusCode::OK);
    let url = format!("{}/", app.dashboard_url);
    assert_eq!(right.get(&url).await.status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_can_be_nested_in_the_apps_router() {
    let db = TestDb::new(Backend::Sqlite).await;
    let probe = Probe::new();
    let mut settings = settings(&db);
    settings.dashboard.enabled = false;
    // Stands for the app's own auth in front of the nested dashboard.
    settings.dashboard.protected_upstream = true;
    let plugin = JobsPlugin::builder(settings)
        .state(probe.clone())
        .start()
        .await
        .unwrap();
    assert_eq!(plugin.dashboard_addr(), None, "no port of its own");
    let routes = Router::new()
        .nest("/jobs", plugin.dashboard_router().unwrap())
        .merge(app::routes())
        .with_state(plugin.jobs());
    let app = serve(plugin, routes).await;

    let id = app.enqueue("/greet", json!({ "name": "Nested" })).await;
    wait_for_state(&app.jobs, id, JobState::Succeeded).await;
    let stats = app
        .http
        .get(&format!("{}/jobs/api/stats", app.app_url))
        .await;
    assert_eq!(stats.json()["counts"]["Succeeded"], 1);
    let page = app.http.get(&format!("{}/jobs", app.app_url)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(r#"<script src="/jobs/assets/app.js?v="#),
        "assets load from under the nest path: {}",
        page.body
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_errors_name_the_setting() {
    let db = TestDb::new(Backend::Sqlite).await;

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut busy = settings(&db);
    busy.dashboard.port = taken.local_addr().unwrap().port();
    let error = JobsPlugin::builder(busy)
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(&format!(
            "dashboard.port: cannot listen on {}",
            taken.local_addr().unwrap()
        )),
        "{error}"
    );

    let mut no_workers = settings(&db);
    no_workers.background_job_server.worker_count = Some(0);
    let error = JobsPlugin::builder(no_workers).start().await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "background_job_server.worker_count: must be at least 1"
    );

    let mut unsupported = settings(&db);
    unsupported.database_url = "mysql://localhost/jobs".into();
    let error = JobsPlugin::builder(unsupported).start().await.unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("database_url: unsupported database URL"),
        "{error}"
    );
}

/// An app whose state has no `Jobs`: the plugin's layer gives its handlers an
/// `Extension<Jobs>`, and the dashboard nested under `/admin/jobs` sits behind the
/// app's own auth layer.
mod layered {
    use axum::extract::{Request, State};
    use axum::http::{StatusCode, header};
    use axum::middleware::{self, Next};
    use axum::response::Response;
    use axum::routing::post;
    use axum::{Extension, Json, Router};
    use jobs::Jobs;
    use jobs::axum::JobsPlugin;
    use serde_json::{Value, json};

    use super::Greet;

    #[derive(Clone)]
    struct AppState {
        prefix: &'static str,
    }

    pub(super) fn routes(plugin: &JobsPlugin) -> Router {
        let admin = Router::new()
            .nest(
                "/admin/jobs",
                plugin.dashboard_router().expect("protected upstream"),
            )
            .layer(middleware::from_fn(require_token));
        Router::new()
            .route("/greet", post(greet))
            .with_state(AppState { prefix: "Dr. " })
            .merge(admin)
            .layer(plugin.layer())
    }

    async fn greet(
        State(state): State<AppState>,
        Extension(jobs): Extension<Jobs>,
        Json(body): Json<Value>,
    ) -> Json<Value> {
        let name = format!("{}{}", state.prefix, body["name"].as_str().unwrap_or(""));
        let id = jobs.enqueue(Greet { name }).await.expect("enqueue");
        Json(json!({ "job_id": id }))
    }

    async fn require_token(request: Request, next: Next) -> Result<Response, StatusCode> {
        match request.headers().get(header::AUTHORIZATION) {
            Some(value) if value == "Bearer admin" => Ok(next.run(request).await),
            _ => Err(StatusCode::UNAUTHORIZED),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_serves_jobs_to_an_app_with_its_own_state_and_auth() {
    let db = TestDb::new(Backend::Sqlite).await;
    let probe = Probe::new();
    let mut settings = settings(&db);
    settings.dashboard.enabled = false;
    // Stands for the app's own auth in front of the nested dashboard.
    settings.dashboard.protected_upstream = true;
    let plugin = JobsPlugin::builder(settings)
        .state(probe.clone())
        .start()
        .await
        .expect("the plugin starts");
    let routes = layered::routes(&plugin);
    let app = serve(plugin, routes).await;
    assert_eq!(app.dashboard_url, "", "no standalone dashboard");

    let id = app.enqueue("/greet", json!({ "name": "Ada" })).await;
    wait_for_state(&app.jobs, id, JobState::Succeeded).await;
    assert_eq!(probe.notes(), ["Dr. Ada"]);

    let job_url = format!("{}/admin/jobs/api/jobs/{id}", app.app_url);
    let refused = app.http.get(&job_url).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    let admin = app.http.with_authorization("Bearer admin");
    let job = admin.get(&job_url).await;
    assert_eq!(job.status, StatusCode::OK, "{}", job.body);
    assert_eq!(job.json()["display_name"], "Greet Dr. Ada");
    let page = admin.get(&format!("{}/admin/jobs/jobs", app.app_url)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("/admin/jobs/assets/app.js"),
        "the page loads its assets under the prefix: {}",
        page.body
    );
    let script = admin
        .get(&format!("{}/admin/jobs/assets/app.js", app.app_url))
        .await;
    assert_eq!(script.status, StatusCode::OK);
    app.stop().await;
}
