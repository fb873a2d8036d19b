//! The HTTP layers in front of the dashboard, through real HTTP: gzip of assets and
//! JSON answers, the API's body limit, and an event stream that still streams.

use std::io::Read;

use crate::support::Backend;
use crate::support::dashboard::{EventStream, Options, boot};
use axum::body::Bytes;
use axum::http::{Method, StatusCode, header};

/// The body of a gzipped answer, decompressed.
fn gunzip(body: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(body)
        .read_to_string(&mut text)
        .expect("a gzip stream of UTF-8 text");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_and_json_are_gzipped_for_a_browser_that_accepts_it() {
    let dashboard = boot(Backend::Sqlite, Options::no_server()).await;
    dashboard.greet("Ada").await;
    let gzip = dashboard.bare.with_header("accept-encoding", "gzip");

    for path in ["/assets/app.js", "/assets/app.css", "/api/jobs"] {
        let plain = dashboard
            .bare
            .raw(Method::GET, &dashboard.at(path), Bytes::new())
            .await;
        assert_eq!(plain.status, StatusCode::OK, "{path}");
        assert_eq!(plain.headers.get(header::CONTENT_ENCODING), None, "{path}");

        let packed = gzip
            .raw(Method::GET, &dashboard.at(path), Bytes::new())
            .await;
        assert_eq!(packed.status, StatusCode::OK, "{path}");
        assert_eq!(
            packed
                .headers
                .get(header::CONTENT_ENCODING)
                .map(|v| v.as_bytes()),
            Some(&b"gzip"[..]),
            "{path}"
        );
        assert!(
            packed.body.len() < plain.body.len(),
            "{path} is smaller gzipped"
        );
        assert_eq!(
            gunzip(&packed.body),
            String::from_utf8(plain.body.to_vec()).unwrap(),
            "{path}"
        );
        // The security headers are still there.
        assert_eq!(
            packed.headers[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff",
            "{path}"
        );
    }
    dashboard.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_api_body_is_refused_with_413_before_it_is_read() {
    let dashboard = boot(Backend::Sqlite, Options::no_server()).await;
    let id = dashboard.greet("Ada").await;
    let mutation = dashboard
        .bare
        .with_header("x-jobs-csrf", "1")
        .with_header("content-type", "application/json");

    // A megabyte of filters: far over the limit.
    let search = "x".repeat(1024 * 1024);
    let body = Bytes::from(format!(r#"{{"search": "{search}"}}"#));
    let reply = mutation
        .raw(Method::POST, &dashboard.at("/api/jobs/delete"), body)
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    // The unread body is still on the connection: the client must not reuse it.
    assert_eq!(
        reply
            .headers
            .get(axum::http::header::CONNECTION)
            .map(|v| v.as_bytes()),
        Some(&b"close"[..])
    );
    let error: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(error["error"], "the request body is too large", "{error}");
    assert_eq!(
        dashboard.wait_for(id, "Enqueued").await["state"],
        "Enqueued"
    );

    // The same request with a small body does what it says.
    let body = Bytes::from_static(br#"{"search": "Ada"}"#);
    let reply = mutation
        .raw(Method::POST, &dashboard.at("/api/jobs/delete"), body)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    dashboard.wait_for(id, "Deleted").await;
    dashboard.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_still_streams_to_a_browser_that_accepts_gzip() {
    let dashboard = boot(Backend::Sqlite, Options::no_server()).await;
    let (status, headers, stream) = EventStream::open_with(
        &dashboard.at("/api/events?topics=jobs&state=Enqueued"),
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers.get(header::CONTENT_ENCODING),
        None,
        "never compressed"
    );
    let mut stream = stream.expect("a stream");
    stream
        .wait_for("jobs", |page| page["items"] == serde_json::json!([]))
        .await;
    // A job enqueued after the stream opened arrives as an event, while it stays open.
    let id = dashboard.greet("Ada").await;
    stream
        .wait_for("jobs", |page| page["items"][0]["id"] == id.to_string())
        .await;
    dashboard.stop().await;
}
