//! The acceptance of the security issue, one test per point: which requests the
//! dashboard, its API, `/metrics`, the event stream, `/tools` and `/mcp` refuse, and
//! which settings refuse to start. The rules do not depend on the backend: SQLite only.

use crate::support::dashboard::{Dashboard, EventStream, Options, boot};
use crate::support::http::{Http, Reply};
use crate::support::{Backend, TestDb};
use axum::Router;
use axum::http::{Method, StatusCode};
use jobs::axum::{AllowedHosts, JobsPlugin, JobsSettings};
use jobs::{JobState, ToolCatalog};
use serde_json::json;

/// What a hostile page sends once it has re-bound its own name to 127.0.0.1: to the
/// browser it is same-origin, so it adds whatever headers it likes.
fn rebound(dashboard: &Dashboard) -> Http {
    let port = dashboard.url.rsplit(':').next().unwrap().to_owned();
    dashboard
        .bare
        .with_header("host", &format!("evil.example:{port}"))
        .with_header("origin", &format!("http://evil.example:{port}"))
        .with_header("sec-fetch-site", "same-origin")
        .with_header("x-jobs-csrf", "1")
}

fn assert_refused(reply: &Reply, what: &str) {
    assert!(
        reply.status.is_client_error(),
        "{what}: {} {}",
        reply.status,
        reply.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dns_rebinding_request_is_refused_and_changes_nothing() {
    let dashboard = boot(Backend::Sqlite, Options::no_server()).await;
    let id = dashboard.summarize("memo").await;
    let evil = rebound(&dashboard);

    let reply = evil.delete(&dashboard.at(&format!("/api/jobs/{id}"))).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert_eq!(reply.json()["code"], "host_not_allowed", "{}", reply.body);
    let reply = evil
        .post(
            &dashboard.at("/api/jobs/delete"),
            json!({ "state": "Enqueued" }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    // Reads too: the page must not learn what the jobs are.
    assert_refused(&evil.get(&dashboard.at("/api/jobs")).await, "GET /api/jobs");
    assert_eq!(
        dashboard.jobs.get(id).await.unwrap().state,
        JobState::Enqueued,
        "nothing changed"
    );
    // The same request under the dashboard's own name goes through.
    let reply = dashboard
        .http
        .delete(&dashboard.at(&format!("/api/jobs/{id}")))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    dashboard.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_post_or_delete_is_refused() {
    let dashboard = boot(Backend::Sqlite, Options::no_server()).await;
    let id = dashboard.summarize("memo").await;
    // The Host is the dashboard's own; the page that sends the request is not.
    for origin in ["https://evil.example", "http://evil.example:8000", "null"] {
        let page = dashboard
            .bare
            .with_header("origin", origin)
            .with_header("sec-fetch-site", "same-origin")
            .with_header("x-jobs-csrf", "1");
        for (method, path) in [
            (Method::POST, format!("/api/jobs/{id}/requeue")),
            (Method::POST, "/api/jobs/delete".to_owned()),
            (Method::DELETE, format!("/api/jobs/{id}")),
            (Method::POST, "/api/queues/default/pause".to_owned()),
            (Method::POST, "/api/job-names/greet/resume".to_owned()),
        ] {
            let reply = page
                .send(method.clone(), &dashboard.at(&path), Some(json!({})))
                .await;
            assert_eq!(
                reply.status,
                StatusCode::FORBIDDEN,
                "{method} {path} from {origin}: {}",
                reply.body
            );
        }
    }
    assert_eq!(
        dashboard.jobs.get(id).await.unwrap().state,
        JobState::Enqueued,
        "nothing changed"
    );
    assert!(dashboard.jobs.paused().await.unwrap().is_empty());
    // From the dashboard's own page, under either loopback name.
    let port = dashboard.url.rsplit(':').next().unwrap().to_owned();
    for name in ["127.0.0.1", "localhost"] {
        let own = format!("http://{name}:{port}");
        let reply = dashboard
            .http
            .with_header("host", &format!("{name}:{port}"))
            .with_header("origin", &own)
            .with_header("sec-fetch-site", "same-origin")
            .post(
                &dashboard.at(&format!("/api/jobs/{id}/requeue")),
                json!(null),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{own}: {}", reply.body);
    }
    dashboard.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_the_event_stream_follow_the_rules_of_the_pages() {
    let dashboard = boot(Backend::Sqlite, Options::no_server()).await;
    let evil = rebound(&dashboard);
    for path in ["/", "/jobs", "/assets/app.js", "/api/stats", "/metrics"] {
        assert_refused(&evil.get(&dashboard.at(path)).await, path);
        assert_eq!(
            dashboard.get(path).await.status,
            StatusCode::OK,
            "{path} under the dashboard's own name"
        );
    }
    let port = dashboard.url.rsplit(':').next().unwrap().to_owned();
    let (status, _, _) = EventStream::open_with(
        &dashboard.at("/api/events"),
        &[("host", &format!("evil.example:{port}"))],
    )
    .await;
    assert!(status.is_client_error(), "{status}");
    let (status, _, _) = EventStream::open_with(
        &dashboard.at("/api/events"),
        &[("host", &format!("localhost:{port}"))],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    dashboard.stop().await;
}

/// Serves `router` on a free loopback port; its URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_and_mcp_follow_the_rules_of_the_pages() {
    let db = TestDb::new(Backend::Sqlite).await;
    let jobs = db
        .jobs(&jobs::ManualClock::new(crate::support::start_time()))
        .await;
    let catalog = ToolCatalog::new(jobs.clone());
    let routes = jobs::axum::tool_routes();
    #[cfg(feature = "mcp")]
    let routes = routes.merge(jobs::axum::mcp::mcp_routes());
    let routes = routes.layer(axum::middleware::from_fn(jobs::axum::caller_from_header));
    let url = serve(routes.with_state(catalog)).await;
    let port = url.rsplit(':').next().unwrap().to_owned();
    let http = Http::new().with_header("x-caller", "user:1");
    let evil = http.with_header("host", &format!("evil.example:{port}"));

    assert_refused(&evil.get(&format!("{url}/tools")).await, "GET /tools");
    assert_eq!(
        http.get(&format!("{url}/tools")).await.status,
        StatusCode::OK
    );
    let reply = evil
        .post(&format!("{url}/tools/no_such_tool"), json!({}))
        .await;
    assert_refused(&reply, "POST /tools/…");
    assert_eq!(reply.json()["code"], "host_not_allowed", "{}", reply.body);
    let cross_site = http.with_header("origin", "https://evil.example");
    let reply = cross_site
        .post(&format!("{url}/tools/no_such_tool"), json!({}))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    // Under an allowed name, the call reaches the catalog (which knows no such tool).
    let reply = http
        .post(&format!("{url}/tools/no_such_tool"), json!({}))
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
    #[cfg(feature = "mcp")]
    {
        let initialize = json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-03-26", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "1"}}
        });
        let reply = evil
            .with_header("accept", "application/json, text/event-stream")
            .post(&format!("{url}/mcp"), initialize.clone())
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
        assert_eq!(reply.json()["code"], "host_not_allowed", "{}", reply.body);
    }
    assert_eq!(crate::support::stored_jobs(&jobs).await, 0, "no job stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_names_are_answered_once_allowed() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut settings = JobsSettings::default();
    settings.database_url = db.url.clone();
    settings.dashboard.port = 0;
    settings.dashboard.allowed_hosts = vec!["jobs.example.com".to_owned()];
    settings.dashboard.username = Some("admin".to_owned());
    settings.dashboard.password = Some("s3cret".to_owned());
    settings.background_job_server.enabled = false;
    let plugin = JobsPlugin::builder(settings).start().await.unwrap();
    let url = format!("http://{}", plugin.dashboard_addr().unwrap());
    let port = url.rsplit(':').next().unwrap().to_owned();
    let http = Http::new().with_authorization("Basic YWRtaW46czNjcmV0");
    for (host, allowed) in [
        (format!("jobs.example.com:{port}"), true),
        ("JOBS.example.com".to_owned(), true),
        (format!("localhost:{port}"), true),
        (format!("[::1]:{port}"), true),
        (format!("other.example.com:{port}"), false),
        (format!("jobs.example.com.evil.example:{port}"), false),
    ] {
        let reply = http
            .with_header("host", &host)
            .get(&format!("{url}/api/stats"))
            .await;
        assert_eq!(
            reply.status.is_success(),
            allowed,
            "{host}: {}",
            reply.status
        );
    }
    // The app's own routes for tools, under the app's public name.
    let hosts = AllowedHosts::from_settings(&plugin.settings().dashboard);
    let tools =
        serve(jobs::axum::tool_routes_allowing(hosts).with_state(ToolCatalog::new(plugin.jobs())))
            .await;
    let reply = Http::new()
        .with_header("host", "jobs.example.com")
        .get(&format!("{tools}/tools"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    plugin.shutdown().await;
}

fn settings_on(db: &TestDb) -> JobsSettings {
    let mut settings = JobsSettings::default();
    settings.database_url = db.url.clone();
    settings.dashboard.port = 0;
    settings.background_job_server.enabled = false;
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_loopback_bind_without_credentials_does_not_start() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut settings = settings_on(&db);
    settings.dashboard.bind = "0.0.0.0".parse().unwrap();
    let error = JobsPlugin::builder(settings.clone())
        .start()
        .await
        .expect_err("an open dashboard on every interface");
    let text = error.to_string();
    assert!(text.starts_with("dashboard.bind: "), "{text}");
    for needle in ["dashboard.username", "dashboard.protected_upstream"] {
        assert!(text.contains(needle), "{text:?} lacks {needle:?}");
    }
    // A public name is the same exposure.
    let mut public = settings_on(&db);
    public.dashboard.allowed_hosts = vec!["jobs.example.com".to_owned()];
    let error = JobsPlugin::builder(public).start().await.unwrap_err();
    assert!(
        error.to_string().starts_with("dashboard.allowed_hosts: "),
        "{error}"
    );

    // With credentials, or with something in front that says it authenticates.
    let mut protected = settings.clone();
    protected.dashboard.protected_upstream = true;
    let plugin = JobsPlugin::builder(protected).start().await.unwrap();
    plugin.shutdown().await;
    let mut with_password = settings;
    with_password.dashboard.username = Some("admin".to_owned());
    with_password.dashboard.password = Some("s3cret".to_owned());
    let plugin = JobsPlugin::builder(with_password).start().await.unwrap();
    plugin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_dashboard_without_credentials_is_not_built() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut settings = settings_on(&db);
    settings.dashboard.enabled = false;
    let error =
        jobs::axum::dashboard::router::<jobs::Jobs>(&settings.dashboard, Default::default())
            .expect_err("an open dashboard in the app's router");
    let text = error.to_string();
    assert!(text.starts_with("dashboard.protected_upstream: "), "{text}");
    assert!(text.contains("dashboard.username"), "{text}");
    let plugin = JobsPlugin::builder(settings.clone()).start().await.unwrap();
    assert!(plugin.dashboard_router::<()>().is_err());
    plugin.shutdown().await;

    settings.dashboard.protected_upstream = true;
    assert!(
        jobs::axum::dashboard::router::<jobs::Jobs>(&settings.dashboard, Default::default())
            .is_ok()
    );
    settings.dashboard.protected_upstream = false;
    settings.dashboard.read_only_username = Some("viewer".to_owned());
    settings.dashboard.read_only_password = Some("look".to_owned());
    assert!(
        jobs::axum::dashboard::router::<jobs::Jobs>(&settings.dashboard, Default::default())
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_credentials_view_but_do_not_change() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut settings = settings_on(&db);
    settings.dashboard.username = Some("admin".to_owned());
    settings.dashboard.password = Some("s3cret".to_owned());
    settings.dashboard.read_only_username = Some("viewer".to_owned());
    settings.dashboard.read_only_password = Some("look".to_owned());
    let plugin = JobsPlugin::builder(settings).start().await.unwrap();
    let url = format!("http://{}", plugin.dashboard_addr().unwrap());
    let id = plugin
        .jobs()
        .enqueue(crate::support::dashboard::Greet {
            name: "Ada".to_owned(),
        })
        .await
        .unwrap();
    // `viewer:look`
    let viewer = Http::new()
        .with_authorization("Basic dmlld2VyOmxvb2s=")
        .with_header("x-jobs-csrf", "1");
    for path in ["/", "/api/jobs", "/api/stats", "/metrics"] {
        let reply = viewer.get(&format!("{url}{path}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
    }
    let (status, _, _) = EventStream::open_with(
        &format!("{url}/api/events"),
        &[("authorization", "Basic dmlld2VyOmxvb2s=")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for (method, path) in [
        (Method::POST, format!("/api/jobs/{id}/requeue")),
        (Method::POST, "/api/jobs/delete".to_owned()),
        (Method::DELETE, format!("/api/jobs/{id}")),
        (Method::POST, "/api/queues/default/pause".to_owned()),
        (Method::POST, "/api/job-names/greet/pause".to_owned()),
    ] {
        let reply = viewer
            .send(method.clone(), &format!("{url}{path}"), Some(json!({})))
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(reply.json()["code"], "read_only", "{}", reply.body);
    }
    assert_eq!(
        plugin.jobs().get(id).await.unwrap().state,
        JobState::Enqueued,
        "nothing changed"
    );
    assert!(plugin.jobs().paused().await.unwrap().is_empty());
    let admin = Http::new()
        .with_authorization("Basic YWRtaW46czNjcmV0")
        .with_header("x-jobs-csrf", "1");
    let reply = admin.delete(&format!("{url}/api/jobs/{id}")).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    plugin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_errors_reach_the_client_as_a_code_and_an_id_only() {
    use sqlx::Connection;
    let dashboard = boot(Backend::Sqlite, Options::no_server()).await;
    let id = dashboard.summarize("memo").await;
    let mut conn = sqlx::SqliteConnection::connect(dashboard.database_url())
        .await
        .unwrap();
    // The job table, and the counters the stats read instead of it.
    for table in ["jobs_job", "jobs_state_count"] {
        sqlx::query(&format!("ALTER TABLE {table} RENAME TO {table}_gone"))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    for path in [
        "/api/jobs".to_owned(),
        format!("/api/jobs/{id}"),
        "/api/stats".to_owned(),
    ] {
        let reply = dashboard.get(&path).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        for detail in ["jobs_job", "no such table", "database error", "sqlite"] {
            assert!(
                !reply.body.to_lowercase().contains(detail),
                "{path} shows {detail:?}: {}",
                reply.body
            );
        }
        let body = reply.json();
        assert_eq!(body["code"], "internal", "{body}");
        let correlation = body["id"].as_str().expect("an id to find the log line by");
        assert!(correlation.len() >= 16, "{correlation}");
        assert!(
            body["error"].as_str().unwrap().contains(correlation),
            "the message names the id: {body}"
        );
    }
    // Errors the client can act on keep their words, with a stable code.
    for table in ["jobs_job", "jobs_state_count"] {
        sqlx::query(&format!("ALTER TABLE {table}_gone RENAME TO {table}"))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let reply = dashboard
        .get(&format!("/api/jobs/{}", jobs::JobId::new()))
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["code"], "not_found", "{}", reply.body);
    let reply = dashboard.get("/api/jobs?state=Nope").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["code"], "bad_request", "{}", reply.body);
    dashboard.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_throttled_per_address() {
    let clock = jobs::ManualClock::new(crate::support::start_time());
    let dashboard = boot(
        Backend::Sqlite,
        Options {
            credentials: Some(("admin", "s3cret")),
            clock: Some(clock.clone()),
            ..Options::no_server()
        },
    )
    .await;
    let stats = dashboard.at("/api/stats");
    let wrong = dashboard.bare.with_authorization("Basic YWRtaW46d3Jvbmc=");
    let right = dashboard.bare.with_authorization("Basic YWRtaW46czNjcmV0");
    let mut refused = 0;
    let throttled = loop {
        let reply = wrong.get(&stats).await;
        if reply.status != StatusCode::UNAUTHORIZED {
            break reply;
        }
        refused += 1;
        assert!(refused <= 10, "still guessing after {refused} failures");
    };
    assert_eq!(refused, 10, "ten failures are allowed in a window");
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        throttled.json()["code"],
        "too_many_attempts",
        "{}",
        throttled.body
    );
    let retry_after: u64 = throttled.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // While throttled, even the right password waits: guessing gains nothing.
    assert_eq!(
        right.get(&stats).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    clock.advance(std::time::Duration::from_secs(retry_after));
    assert_eq!(right.get(&stats).await.status, StatusCode::OK);
    assert_eq!(wrong.get(&stats).await.status, StatusCode::UNAUTHORIZED);
    dashboard.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_dashboard_ends_its_event_streams_when_the_app_shuts_down() {
    use jobs::axum::dashboard::{self, CancellationToken};
    let db = TestDb::new(Backend::Sqlite).await;
    let jobs = db
        .jobs(&jobs::ManualClock::new(crate::support::start_time()))
        .await;
    let mut settings = jobs::axum::DashboardSettings::default();
    settings.protected_upstream = true;
    let shutdown = CancellationToken::new();
    let app: Router = Router::new()
        .nest(
            "/jobs",
            dashboard::router(&settings, shutdown.clone()).unwrap(),
        )
        .with_state(jobs);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = shutdown.clone().cancelled_owned();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
            .unwrap();
    });
    let (status, stream) = EventStream::open(&format!("{url}/jobs/api/events"), None).await;
    assert_eq!(status, StatusCode::OK);
    let mut stream = stream.unwrap();

    shutdown.cancel();
    // A bound for a failure, not a wait: the app stops as soon as the stream ends.
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("the app's graceful shutdown waited on the event stream")
        .unwrap();
    while stream.next().await.is_some() {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_past_the_cap_get_a_clear_503() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut settings = settings_on(&db);
    settings.dashboard.max_event_streams = 2;
    let plugin = JobsPlugin::builder(settings).start().await.unwrap();
    let events = format!("http://{}/api/events", plugin.dashboard_addr().unwrap());
    let (status, first) = EventStream::open(&events, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _second) = EventStream::open(&events, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, third) = EventStream::open_with(&events, &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    drop(third);
    // Read whole only now that it is known not to be a stream.
    let reply = Http::new().get(&events).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(reply.json()["code"], "too_many_streams");
    assert!(
        reply.json()["error"]
            .as_str()
            .unwrap()
            .contains("dashboard.max_event_streams"),
        "{}",
        reply.body
    );
    // A closed tab frees its place.
    drop(first);
    crate::support::wait_until("a closed stream's place is free", || {
        let events = events.clone();
        async move {
            let (status, stream) = EventStream::open(&events, None).await;
            drop(stream);
            status == StatusCode::OK
        }
    })
    .await;
    plugin.shutdown().await;
}

/// Takes a note.
#[jobs::prelude::job]
async fn take_note(text: String) {
    let _ = text;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_tool_call_shows_an_error_id_not_the_database_text() {
    use sqlx::Connection;
    let db = TestDb::new(Backend::Sqlite).await;
    let jobs = db
        .jobs(&jobs::ManualClock::new(crate::support::start_time()))
        .await;
    let catalog = ToolCatalog::new(jobs.clone()).allow::<TakeNote>();
    let url = serve(
        jobs::axum::tool_routes()
            .layer(axum::middleware::from_fn(jobs::axum::caller_from_header))
            .with_state(catalog),
    )
    .await;
    let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    sqlx::query("ALTER TABLE jobs_job RENAME TO jobs_job_gone")
        .execute(&mut conn)
        .await
        .unwrap();
    let reply = Http::new()
        .with_header("x-caller", "user:1")
        .post(
            &format!("{url}/tools/run_take_note"),
            json!({ "text": "hi" }),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        reply.body
    );
    for detail in ["jobs_job", "no such table", "database error"] {
        assert!(
            !reply.body.contains(detail),
            "shows {detail:?}: {}",
            reply.body
        );
    }
    let body = reply.json();
    assert_eq!(body["error"], "internal", "{body}");
    let id = body["id"].as_str().expect("an error id");
    assert!(body["message"].as_str().unwrap().contains(id), "{body}");
}
