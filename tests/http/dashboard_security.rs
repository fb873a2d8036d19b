//! The dashboard's security: Basic auth on every route (SSE and metrics included),
//! mutations refused when cross-site, and the headers of every answer. Plus the pages
//! and assets themselves. The rules do not depend on the backend: SQLite only.

use crate::support::dashboard::{Dashboard, EventStream, Options, boot};
use crate::support::http::Http;
use crate::support::{Backend, TestDb};
use axum::Router;
use axum::http::{Method, StatusCode, header};
use jobs::JobId;
use jobs::axum::{JobsPlugin, JobsSettings};
use serde_json::json;

/// `admin:s3cret`, base64-encoded.
const RIGHT: &str = "Basic YWRtaW46czNjcmV0";

/// A dashboard with a password, and a job in it.
async fn password_protected() -> (Dashboard, JobId) {
    let dashboard = boot(
        Backend::Sqlite,
        Options {
            credentials: Some(("admin", "s3cret")),
            ..Options::no_server()
        },
    )
    .await;
    let id = dashboard.summarize("memo").await;
    (dashboard, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_password_every_route_needs_it() {
    let (dashboard, id) = password_protected().await;
    let routes = [
        (Method::GET, "/".to_owned()),
        (Method::GET, "/jobs".to_owned()),
        (Method::GET, format!("/jobs/{id}")),
        (Method::GET, "/servers".to_owned()),
        (Method::GET, "/queues".to_owned()),
        (Method::GET, "/assets/app.js".to_owned()),
        (Method::GET, "/assets/app.css".to_owned()),
        (Method::GET, "/api/stats".to_owned()),
        (Method::GET, "/api/jobs".to_owned()),
        (Method::GET, format!("/api/jobs/{id}")),
        (Method::GET, "/api/servers".to_owned()),
        (Method::GET, "/api/queues".to_owned()),
        (Method::GET, "/api/registered-jobs".to_owned()),
        (Method::GET, "/api/events".to_owned()),
        (Method::GET, "/metrics".to_owned()),
        (Method::GET, "/nowhere".to_owned()),
        (Method::POST, format!("/api/jobs/{id}/requeue")),
        (Method::POST, "/api/jobs/requeue".to_owned()),
        (Method::POST, "/api/jobs/delete".to_owned()),
        (Method::DELETE, format!("/api/jobs/{id}")),
        (Method::POST, "/api/queues/email/pause".to_owned()),
        (Method::POST, "/api/queues/email/resume".to_owned()),
        (Method::POST, "/api/job-names/greet/pause".to_owned()),
        (Method::POST, "/api/job-names/greet/resume".to_owned()),
    ];
    for (method, path) in &routes {
        let reply = dashboard
            .http
            .send(method.clone(), &dashboard.at(path), Some(json!({})))
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        let challenge = reply.headers[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.starts_with("Basic realm="), "{challenge}");
        assert_eq!(reply.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
    let (status, _) = EventStream::open(&dashboard.at("/api/events"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let wrong = dashboard.http.with_authorization("Basic YWRtaW46d3Jvbmc=");
    assert_eq!(
        wrong.get(&dashboard.at("/api/stats")).await.status,
        StatusCode::UNAUTHORIZED
    );

    let right = dashboard.http.with_authorization(RIGHT);
    for (method, path) in &routes[..15] {
        let reply = if path == "/api/events" {
            let (status, _) = EventStream::open(&dashboard.at(path), Some(RIGHT)).await;
            assert_eq!(status, StatusCode::OK);
            continue;
        } else {
            right.send(method.clone(), &dashboard.at(path), None).await
        };
        assert_eq!(reply.status, StatusCode::OK, "{method} {path}");
    }
    let reply = right
        .post(
            &dashboard.at("/api/jobs/requeue"),
            json!({ "state": "Enqueued" }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        right
            .delete(&dashboard.at(&format!("/api/jobs/{id}")))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    // A pause records who paused: the username of the credentials.
    let reply = right
        .post(&dashboard.at("/api/queues/email/pause"), json!(null))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["paused_by"], "admin");
    let reply = right
        .post(&dashboard.at("/api/job-names/greet/pause"), json!(null))
        .await;
    assert_eq!(reply.json()["paused_by"], "admin", "{}", reply.body);
    let paused = dashboard.jobs.paused().await.unwrap();
    assert_eq!(paused.len(), 2);
    assert!(paused.iter().all(|pause| pause.by == "admin"), "{paused:?}");
    dashboard.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_mutations_are_refused() {
    let (dashboard, id) = password_protected().await;
    // What a browser sends for a hostile page, with the saved credentials.
    let browser = dashboard.bare.with_authorization(RIGHT);
    let host = dashboard.url.trim_start_matches("http://").to_owned();
    let requeue = dashboard.at(&format!("/api/jobs/{id}/requeue"));
    for (client, why) in [
        (
            browser
                .with_header("sec-fetch-site", "cross-site")
                .with_header("origin", "https://evil.example")
                .with_header("x-jobs-csrf", "1"),
            "Origin \"https://evil.example\" is not a page of an allowed host",
        ),
        (
            browser
                .with_header("sec-fetch-site", "same-site")
                .with_header("x-jobs-csrf", "1"),
            "Sec-Fetch-Site is \"same-site\"",
        ),
        (
            browser
                .with_header("origin", "https://evil.example")
                .with_header("x-jobs-csrf", "1"),
            "Origin \"https://evil.example\" is not a page of an allowed host",
        ),
        (
            // A plain HTML form: same origin as far as headers go, but no custom header.
            browser
                .with_header("sec-fetch-site", "same-origin")
                .with_header("content-type", "application/x-www-form-urlencoded"),
            "needs the header `X-Jobs-Csrf: 1`",
        ),
        (browser.clone(), "needs the header `X-Jobs-Csrf: 1`"),
    ] {
        for (method, url) in [
            (Method::POST, requeue.clone()),
            (Method::POST, dashboard.at("/api/jobs/delete")),
            (Method::DELETE, dashboard.at(&format!("/api/jobs/{id}"))),
            (Method::POST, dashboard.at("/api/queues/email/pause")),
            (Method::POST, dashboard.at("/api/job-names/greet/pause")),
        ] {
            let reply = client
                .send(method.clone(), &url, Some(json!({ "state": "Enqueued" })))
                .await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{method} {url}: {why}");
            let error = reply.json()["error"].as_str().unwrap().to_owned();
            assert!(
                error.starts_with("cross-site request refused: ") && error.contains(why),
                "{error}"
            );
        }
    }
    assert_eq!(
        dashboard.jobs.get(id).await.unwrap().state,
        jobs::JobState::Enqueued,
        "nothing changed"
    );
    assert!(
        dashboard.jobs.paused().await.unwrap().is_empty(),
        "nothing paused"
    );

    // The dashboard's own script: same origin, with the header.
    for client in [
        browser
            .with_header("sec-fetch-site", "same-origin")
            .with_header("origin", &dashboard.url)
            .with_header("x-jobs-csrf", "1"),
        browser
            .with_header("origin", &format!("http://{}", host.to_uppercase()))
            .with_header("x-jobs-csrf", "1"),
        browser.with_header("x-jobs-csrf", "1"),
    ] {
        let reply = client.post(&requeue, json!(null)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    // Reads need no header: links and the event stream work from anywhere.
    let reply = browser
        .with_header("sec-fetch-site", "cross-site")
        .get(&dashboard.at("/api/stats"))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    dashboard.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_security_headers() {
    let dashboard = boot(Backend::Sqlite, Options::no_server()).await;
    for path in [
        "/",
        "/jobs",
        "/api/stats",
        "/api/jobs/x",
        "/metrics",
        "/nowhere",
    ] {
        let reply = dashboard.get(path).await;
        let csp = reply.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "require-trusted-types-for 'script'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(reply.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(reply.headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store", "{path}");
    }
    dashboard.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_one_document_loading_assets_from_the_binary() {
    let dashboard = boot(Backend::Sqlite, Options::no_server()).await;
    let page = dashboard
        .get("/jobs/0190f0e2-0000-7000-8000-000000000000")
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.body.contains(r#"<meta name="jobs-base" content="">"#));
    let script = page
        .body
        .split('"')
        .find(|part| part.starts_with("/assets/app.js?v="))
        .expect("the script, by a versioned URL")
        .to_owned();
    assert!(!page.body.contains("<script>"), "no inline script");
    for path in ["/", "/jobs", "/servers"] {
        assert_eq!(dashboard.get(path).await.body, page.body, "{path}");
    }

    for (path, content_type) in [
        (script.as_str(), "text/javascript; charset=utf-8"),
        ("/assets/app.css", "text/css; charset=utf-8"),
        ("/assets/icon.svg", "image/svg+xml"),
    ] {
        let reply = dashboard.get(path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.headers[header::CONTENT_TYPE], content_type);
        assert_eq!(
            reply.headers[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
    }
    let script = dashboard.get(&script).await.body;
    for unsafe_sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
    ] {
        assert!(
            !script.contains(unsafe_sink),
            "the script builds the DOM with textContent only, not {unsafe_sink}"
        );
    }
    let script = script.replace("http://www.w3.org/2000/svg", ""); // a name, not a load
    assert!(
        !script.contains("http://") && !script.contains("https://"),
        "nothing from elsewhere"
    );
    dashboard.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_pages_load_their_assets_under_the_nest_path() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut settings = JobsSettings::default();
    settings.database_url = db.url.clone();
    settings.dashboard.enabled = false;
    settings.dashboard.protected_upstream = true;
    settings.background_job_server.enabled = false;
    let plugin = JobsPlugin::builder(settings).start().await.unwrap();
    let app: Router = Router::new()
        .nest("/ops/jobs", plugin.dashboard_router().unwrap())
        .with_state(plugin.jobs());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = Http::new();

    let page = http.get(&format!("{url}/ops/jobs/servers")).await;
    assert!(
        page.body
            .contains(r#"<meta name="jobs-base" content="/ops/jobs">"#)
    );
    assert!(page.body.contains(r#"src="/ops/jobs/assets/app.js?v="#));
    assert_eq!(http.get(&format!("{url}/ops/jobs")).await.body, page.body);
    let stats = http.get(&format!("{url}/ops/jobs/api/stats")).await;
    assert_eq!(stats.json()["total"], 0);
    server.abort();
    plugin.shutdown().await;
}
