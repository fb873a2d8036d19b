//! The dashboard's JSON API driven through its real router (`oneshot`, no socket) over a
//! real database: whatever the query string, path segment or body, the answer is never
//! a 5xx, every 4xx is the structured `{"code", "error"}`, a refused change changes
//! nothing, and a search is literal text (`%`, `_`, quotes, any script).

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use jobs::axum::DashboardSettings;
use jobs::axum::dashboard::{self, CancellationToken};
use jobs::{JobId, Jobs};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::dashboard::Greet;
use crate::support::{Backend, TestDb, setup};
use crate::{cases, json_value, runtime, text};

struct Api {
    router: Router,
    jobs: Jobs,
    /// Ids of jobs and recurring jobs that exist, for paths that name one.
    job_ids: Vec<JobId>,
    recurring_ids: Vec<String>,
    _db: TestDb,
}

impl Api {
    async fn new(backend: Backend) -> Self {
        let (db, _clock, jobs, _probe) = setup(backend).await;
        let mut settings = DashboardSettings::default();
        settings.protected_upstream = true;
        let router = dashboard::router(&settings, CancellationToken::new())
            .expect("a protected dashboard nests")
            .with_state(jobs.clone());
        let mut job_ids = Vec::new();
        for name in [
            "Ada",
            "Grace 100%",
            "under_score",
            "it's \"quoted\"",
            "Émile",
        ] {
            job_ids.push(jobs.enqueue(Greet { name: name.into() }).await.unwrap());
        }
        let recurring_ids = vec!["nightly".to_owned(), "tool:org:42:x".to_owned()];
        for id in &recurring_ids {
            jobs.recurring()
                .every(
                    id.clone(),
                    Duration::from_secs(3600),
                    Greet { name: id.clone() },
                )
                .await
                .unwrap();
        }
        Self {
            router,
            jobs,
            job_ids,
            recurring_ids,
            _db: db,
        }
    }

    /// Sends a request as the dashboard's own script does (allowed host, CSRF header)
    /// and checks the answer's shape; returns its status and JSON body.
    async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Value), TestCaseError> {
        let Ok(request) = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(header::HOST, "localhost")
            .header("x-jobs-csrf", "1")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
        else {
            // Not a request any client can send (the URI does not parse).
            return Err(TestCaseError::reject("not a URI"));
        };
        let before = self.jobs.count_by_state().await.unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let json = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let shown = String::from_utf8_lossy(&bytes);
        prop_assert!(
            !status.is_server_error(),
            "{method} {uri}: {status} {shown}"
        );
        if status == StatusCode::NO_CONTENT {
            prop_assert!(bytes.is_empty());
            return Ok((status, Value::Null));
        }
        prop_assert!(json, "{method} {uri}: {status} is not JSON: {shown}");
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|error| TestCaseError::fail(format!("{uri}: {error}: {shown}")))?;
        if status.is_client_error() {
            prop_assert!(
                body["code"].as_str().is_some_and(|code| !code.is_empty())
                    && body["error"]
                        .as_str()
                        .is_some_and(|error| !error.is_empty()),
                "{method} {uri}: {status} {body}"
            );
            if method != Method::GET {
                let after = self.jobs.count_by_state().await.unwrap();
                prop_assert_eq!(before, after, "{} {}: refused, yet changed", method, uri);
            }
        }
        Ok((status, body))
    }
}

impl Api {
    async fn deleted(&self, id: JobId) -> bool {
        self.jobs.get(id).await.unwrap().state == jobs::JobState::Deleted
    }
}

/// Every byte that is not unreserved in a URI, percent-encoded.
fn encode(text: &str) -> String {
    let mut encoded = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// A value of a query parameter: text of every kind, and the kinds each parameter
/// takes, right and wrong.
fn parameter_value() -> impl Strategy<Value = String> {
    prop_oneof![
        text(),
        prop::sample::select(&[
            "Enqueued",
            "scheduled",
            "DELETED",
            "Failed ",
            "Exploded",
            "",
            " ",
            "\0",
        ])
        .prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        Just("1e3".to_owned()),
        any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
        any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).simple().to_string()),
    ]
}

fn query_string() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        4 => prop::sample::select(&["state", "name", "search", "label", "after", "limit"])
            .prop_map(str::to_owned),
        1 => "[a-z_]{1,8}",
    ];
    let encoded = prop::collection::vec((key, parameter_value()), 0..5).prop_map(|pairs| {
        pairs
            .iter()
            .map(|(key, value)| format!("{key}={}", encode(value)))
            .collect::<Vec<_>>()
            .join("&")
    });
    // What a client may put in a query as it is: stray `%`, `&`, `=` and `+`.
    let raw = "[A-Za-z0-9%&=+._~!$'()*,;:@/?-]{0,30}";
    prop_oneof![3 => encoded, 1 => raw]
}

/// One request to the API: a list, an action on one job or recurring job (named by an
/// id that exists, a UUID that does not, or any text), or a bulk action.
#[derive(Debug, Clone)]
enum Call {
    List(String),
    One { method: Method, path: String },
    Bulk { action: &'static str, body: Vec<u8> },
}

fn segment(existing: usize) -> impl Strategy<Value = Segment> {
    prop_oneof![
        (0..existing).prop_map(Segment::Existing),
        any::<u128>().prop_map(|n| Segment::Text(uuid::Uuid::from_u128(n).to_string())),
        text().prop_map(Segment::Text),
        // As a client may write it: `%` not followed by two hex digits, or by bytes
        // that are not UTF-8.
        "[A-Za-z0-9%]{1,9}".prop_map(Segment::Raw),
    ]
}

#[derive(Debug, Clone)]
enum Segment {
    Existing(usize),
    Text(String),
    Raw(String),
}

fn bulk_body() -> impl Strategy<Value = Vec<u8>> {
    let filters = prop::collection::btree_map(
        prop_oneof![
            4 => prop::sample::select(&["state", "name", "search", "label"]).prop_map(str::to_owned),
            1 => "[a-z]{1,6}",
        ],
        prop_oneof![parameter_value().prop_map(Value::from), json_value()],
        0..4,
    )
    .prop_map(|filters| serde_json::to_vec(&filters).unwrap());
    prop_oneof![
        3 => filters,
        1 => json_value().prop_map(|value| serde_json::to_vec(&value).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 0..48),
    ]
}

fn call() -> impl Strategy<Value = (Call, Segment)> {
    let one = (
        prop::sample::select(&[
            (Method::GET, "/api/jobs/{}"),
            (Method::DELETE, "/api/jobs/{}"),
            (Method::POST, "/api/jobs/{}/requeue"),
            (Method::GET, "/api/recurring-jobs/{}"),
            (Method::DELETE, "/api/recurring-jobs/{}"),
            (Method::POST, "/api/recurring-jobs/{}/trigger"),
            (Method::POST, "/api/recurring-jobs/{}/enable"),
            (Method::POST, "/api/recurring-jobs/{}/disable"),
            (Method::POST, "/api/events/approval/{}"),
            (Method::POST, "/api/queues/{}/pause"),
            (Method::POST, "/api/queues/{}/resume"),
            (Method::POST, "/api/job-names/{}/pause"),
            (Method::POST, "/api/job-names/{}/resume"),
        ]),
        segment(5),
    )
        .prop_map(|((method, path), segment)| {
            (
                Call::One {
                    method,
                    path: path.to_owned(),
                },
                segment,
            )
        });
    prop_oneof![
        2 => query_string().prop_map(|query| (Call::List(query), Segment::Existing(0))),
        2 => one,
        1 => (prop::sample::select(&["requeue", "delete"]), bulk_body())
            .prop_map(|(action, body)| (Call::Bulk { action, body }, Segment::Existing(0))),
    ]
}

impl Api {
    async fn check(&self, call: Call, segment: Segment) -> Result<(), TestCaseError> {
        match call {
            Call::List(query) => {
                let (status, body) = self
                    .call(Method::GET, &format!("/api/jobs?{query}"), Vec::new())
                    .await?;
                if status == StatusCode::OK {
                    prop_assert!(body["items"].is_array(), "{body}");
                    prop_assert!(body["next"].is_null() || body["next"].is_string());
                } else {
                    prop_assert_eq!(status, StatusCode::BAD_REQUEST);
                }
            }
            Call::One { method, path } => {
                let recurring = path.starts_with("/api/recurring-jobs");
                let segment = match segment {
                    Segment::Existing(index) if recurring => {
                        encode(&self.recurring_ids[index % self.recurring_ids.len()])
                    }
                    Segment::Existing(index) => {
                        self.job_ids[index % self.job_ids.len()].to_string()
                    }
                    Segment::Text(text) => encode(&text),
                    Segment::Raw(raw) => raw,
                };
                let uri = path.replace("{}", &segment);
                let (status, _) = self.call(method, &uri, Vec::new()).await?;
                prop_assert!(
                    [
                        StatusCode::OK,
                        StatusCode::NO_CONTENT,
                        StatusCode::BAD_REQUEST,
                        StatusCode::NOT_FOUND,
                        StatusCode::CONFLICT,
                    ]
                    .contains(&status),
                    "{uri}: {status}"
                );
            }
            Call::Bulk { action, body } => {
                let uri = format!("/api/jobs/{action}");
                let (status, answer) = self.call(Method::POST, &uri, body).await?;
                if status == StatusCode::OK {
                    prop_assert!(answer["count"].is_u64(), "{answer}");
                } else {
                    prop_assert_eq!(status, StatusCode::BAD_REQUEST);
                }
            }
        }
        Ok(())
    }
}

fn any_request_is_answered_in_json_without_a_server_error(backend: Backend, count: u32) {
    let runtime = runtime();
    let api = runtime.block_on(Api::new(backend));
    proptest!(cases(count), |((call, segment) in call())| {
        runtime.block_on(api.check(call, segment))?;
    });
}

#[test]
fn sqlite_any_request_is_answered_in_json_without_a_server_error() {
    any_request_is_answered_in_json_without_a_server_error(Backend::Sqlite, 256);
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_any_request_is_answered_in_json_without_a_server_error() {
    any_request_is_answered_in_json_without_a_server_error(Backend::Postgres, 128);
}

/// Text to search for: the characters `LIKE` and quoting treat specially, letters of
/// both cases and of other scripts.
fn needle() -> impl Strategy<Value = String> {
    prop_oneof![
        "[%_\\\\'\"a-zA-Z0-9 ]{1,6}",
        "[%_\\\\aAéÉßİı日本😀 -]{1,5}",
        text(),
    ]
    .prop_filter("a search of spaces is no search", |needle| {
        !needle.trim().is_empty() && !needle.contains('\0')
    })
}

/// Whether a search for `needle` matches `text`: literally, ASCII letters in any case.
fn matches(text: &str, needle: &str) -> bool {
    text.to_ascii_lowercase()
        .contains(&needle.to_ascii_lowercase())
}

fn search_is_literal_text(backend: Backend, count: u32) {
    let runtime = runtime();
    let api = runtime.block_on(Api::new(backend));
    proptest!(cases(count), |(needle in needle(), prefix in "[a-z]{0,3}", other in needle())| {
        runtime.block_on(async {
            let holder = format!("{prefix}{needle}.");
            let found = api.jobs.enqueue(Greet { name: holder }).await.unwrap();
            let missed = api.jobs.enqueue(Greet { name: other.clone() }).await.unwrap();
            let uri = format!("/api/jobs?limit=500&search={}", encode(&needle));
            let (status, page) = api.call(Method::GET, &uri, Vec::new()).await?;
            prop_assert_eq!(status, StatusCode::OK);
            let items = page["items"].as_array().unwrap();
            for item in items {
                let (display, name) = (item["display_name"].as_str().unwrap(), item["name"].as_str().unwrap());
                prop_assert!(
                    matches(display, &needle) || matches(name, &needle),
                    "{:?} found {:?}", needle, display
                );
            }
            let listed = |id: JobId| items.iter().any(|item| item["id"] == id.to_string());
            prop_assert!(listed(found), "{:?} not found in {:?}", needle, page);
            let other_matches = matches(&format!("Greet {other}"), &needle)
                || matches(crate::support::dashboard::job_name::<Greet>(), &needle);
            prop_assert_eq!(listed(missed), other_matches, "{:?} / {:?}", needle, other);
            // A bulk delete by the same search deletes the same jobs.
            let body = serde_json::to_vec(&json!({"search": needle})).unwrap();
            let (status, _) = api.call(Method::POST, "/api/jobs/delete", body).await?;
            prop_assert_eq!(status, StatusCode::OK);
            prop_assert!(api.deleted(found).await);
            prop_assert_eq!(api.deleted(missed).await, other_matches);
            Ok(())
        })?;
    });
}

#[test]
fn sqlite_search_is_literal_text() {
    search_is_literal_text(Backend::Sqlite, 64);
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_search_is_literal_text() {
    search_is_literal_text(Backend::Postgres, 64);
}

/// Found by `search_is_literal_text`: the search text was lowered as Unicode while
/// SQLite lowers only ASCII letters (a search for `É` missed `Émile` on SQLite) and
/// PostgreSQL lowers `İ` otherwise than Rust. Now only ASCII letters fold, the same on
/// both.
async fn a_search_finds_text_of_any_script_as_written(backend: Backend) {
    let api = Api::new(backend).await;
    let istanbul = api
        .jobs
        .enqueue(Greet {
            name: "İstanbul".into(),
        })
        .await
        .unwrap();
    let api = &api;
    let search = |text: &str| {
        let uri = format!("/api/jobs?search={}", encode(text));
        async move {
            let (status, page) = api.call(Method::GET, &uri, Vec::new()).await.unwrap();
            assert_eq!(status, StatusCode::OK);
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|item| item["display_name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(search("Émile").await, ["Greet Émile"]);
    assert_eq!(search("mILE").await, ["Greet Émile"]);
    assert_eq!(search("İ").await, ["Greet İstanbul"]);
    assert_eq!(
        search("émile").await,
        Vec::<String>::new(),
        "only ASCII letters fold"
    );
    assert!(api.jobs.get(istanbul).await.is_ok());
}

/// Found by `any_request_is_answered_in_json_without_a_server_error`: a query
/// parameter given twice and a path that is not UTF-8 got axum's plain-text 400, and
/// on PostgreSQL an id with a NUL character got a 500 from the store.
async fn the_routers_own_refusals_are_structured(backend: Backend) {
    let api = Api::new(backend).await;
    for (method, uri) in [
        (Method::GET, "/api/jobs?name=a&name=b"),
        (Method::GET, "/api/jobs/%FF"),
        (Method::GET, "/api/recurring-jobs/%FF"),
        (Method::GET, "/api/recurring-jobs/%00"),
        (Method::POST, "/api/recurring-jobs/a%00b/trigger"),
        (Method::POST, "/api/job-names/a%00b/pause"),
        (Method::POST, "/api/queues/%FF/pause"),
        (Method::GET, "/api/jobs?search=%00"),
    ] {
        let (status, body) = api.call(method, uri, Vec::new()).await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["code"], "bad_request", "{uri}: {body}");
    }
}

backend_tests!(
    a_search_finds_text_of_any_script_as_written,
    the_routers_own_refusals_are_structured,
);
