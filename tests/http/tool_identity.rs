//! Agent tools with a real identity: who a call is for comes from the app's own auth,
//! ownership is the exact caller stored with each job and recurring job, quotas bound
//! what one caller stores, and listing is paged. On both backends.

use std::collections::BTreeSet;

use crate::support::http::{Http, Reply};
use crate::support::{Backend, TestDb, start_time, stored_jobs};
use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use jobs::axum::Caller;
use jobs::prelude::*;
use jobs::{JobState, Jobs, ManualClock, Quota, ToolCatalog, ToolErrorKind, ToolResult};
use serde_json::{Value, json};

backend_tests!(
    a_caller_never_sees_or_deletes_the_schedules_of_a_caller_it_prefixes,
    a_caller_never_sees_or_deletes_jobs_or_schedules_of_lookalike_callers,
    the_caller_header_is_ignored_unless_the_app_opts_in,
    a_request_without_identity_is_refused_with_401_and_stores_nothing,
    the_pending_jobs_quota_holds_and_says_which_quota,
    the_recurring_jobs_quota_holds_and_says_which_quota,
    concurrent_calls_never_store_past_a_quota,
    listing_pages_through_jobs_then_recurring_jobs,
    rows_of_earlier_releases_stay_with_the_caller_of_their_label,
);

/// Takes a note.
#[job]
async fn take_note(text: String) {
    let _ = text;
}

/// Digests the day's notes.
#[job]
async fn digest(topic: String) {
    let _ = topic;
}

/// Labelled like a tool call's job, by the app itself.
#[job(labels = ["caller:{who}"], tool = false)]
async fn caller_label(who: String) {
    let _ = who;
}

/// Labelled for two callers.
#[job(labels = ["tool-call", "caller:{who}", "caller:other"], tool = false)]
async fn two_caller_labels(who: String) {
    let _ = who;
}

/// Callers that a prefix, a `LIKE` pattern or a case-blind match would confuse.
const LOOKALIKES: [&str; 6] = ["org:42", "org:42:user:7", "org%", "org_42", "ORG:42", "org"];

async fn setup(backend: Backend) -> (TestDb, Jobs) {
    let db = TestDb::new(backend).await;
    let jobs = db.jobs(&ManualClock::new(start_time())).await;
    (db, jobs)
}

fn catalog(jobs: &Jobs) -> ToolCatalog {
    ToolCatalog::new(jobs.clone())
        .allow::<TakeNote>()
        .allow_recurring::<Digest>()
}

async fn note(catalog: &ToolCatalog, caller: &str) -> String {
    let args = json!({"text": "t", "delay_seconds": 60});
    match catalog
        .call_tool("schedule_take_note", args, caller)
        .await
        .unwrap()
    {
        ToolResult::Enqueued { job_id, .. } => job_id.to_string(),
        other => panic!("{other:?}"),
    }
}

async fn schedule(catalog: &ToolCatalog, caller: &str) -> String {
    let args = json!({"topic": "t", "cron": "0 8 * * *"});
    match catalog
        .call_tool("schedule_digest_recurring", args, caller)
        .await
        .unwrap()
    {
        ToolResult::Recurring { recurring_id, .. } => recurring_id,
        other => panic!("{other:?}"),
    }
}

/// One page of `list_recurring_jobs` for `caller`: its ids and the next cursor.
async fn page(catalog: &ToolCatalog, caller: &str, arguments: Value) -> (Vec<String>, Value) {
    let result = catalog
        .call_tool("list_recurring_jobs", arguments, caller)
        .await
        .unwrap();
    let value = serde_json::to_value(&result).unwrap();
    let ids = value["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["id"].as_str().unwrap().to_owned())
        .collect();
    (ids, value["next_cursor"].clone())
}

async fn listed(catalog: &ToolCatalog, caller: &str) -> Vec<String> {
    page(catalog, caller, json!({})).await.0
}

async fn a_caller_never_sees_or_deletes_the_schedules_of_a_caller_it_prefixes(backend: Backend) {
    let (_db, jobs) = setup(backend).await;
    let catalog = catalog(&jobs);
    let user = schedule(&catalog, "org:42:user:7").await;
    assert_eq!(
        listed(&catalog, "org:42:user:7").await,
        std::slice::from_ref(&user)
    );

    assert_eq!(listed(&catalog, "org:42").await, Vec::<String>::new());
    let error = catalog
        .call_tool("delete_job", json!({"id": user}), "org:42")
        .await
        .unwrap_err();
    assert_eq!(error.kind, ToolErrorKind::NotFound, "{error:?}");
    assert!(jobs.recurring().get(&user).await.is_ok(), "still stored");
}

async fn a_caller_never_sees_or_deletes_jobs_or_schedules_of_lookalike_callers(backend: Backend) {
    let (_db, jobs) = setup(backend).await;
    let catalog = catalog(&jobs);
    let mut owned = Vec::new();
    for caller in LOOKALIKES {
        owned.push((
            caller,
            note(&catalog, caller).await,
            schedule(&catalog, caller).await,
        ));
    }
    for (caller, job, recurring) in &owned {
        assert_eq!(
            listed(&catalog, caller).await,
            [job.clone(), recurring.clone()],
            "{caller:?}"
        );
        assert!(!recurring.contains(caller), "an opaque id: {recurring}");
        for (other, _, _) in owned.iter().filter(|(other, _, _)| other != caller) {
            for id in [job, recurring] {
                let error = catalog
                    .call_tool("delete_job", json!({"id": id}), other)
                    .await
                    .unwrap_err();
                assert_eq!(error.kind, ToolErrorKind::NotFound, "{other:?} on {id}");
            }
        }
    }
    for (_, job, recurring) in &owned {
        let job = jobs.get(job.parse().unwrap()).await.unwrap();
        assert_eq!(job.state, JobState::Scheduled, "nothing deleted");
        assert!(jobs.recurring().get(recurring).await.is_ok());
    }
    for nobody in ["%", "_", "org:", "org:42:user", ""] {
        assert!(listed(&catalog, nobody).await.is_empty(), "{nobody:?}");
    }
    // Each caller deletes its own.
    for (caller, job, recurring) in &owned {
        for id in [job, recurring] {
            catalog
                .call_tool("delete_job", json!({"id": id}), caller)
                .await
                .unwrap();
        }
        assert!(listed(&catalog, caller).await.is_empty());
    }
}

/// The app's own authentication, as a test has it: a bearer token names the user.
async fn authenticate(mut request: Request, next: Next) -> Response {
    let user = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer token-of-"))
        .map(str::to_owned);
    if let Some(user) = user {
        request.extensions_mut().insert(Caller::new(user));
    }
    next.run(request).await
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

/// The tool routes (and MCP's, with the feature) behind the app's authentication.
fn authenticated(catalog: ToolCatalog) -> Router {
    let routes = jobs::axum::tool_routes();
    #[cfg(feature = "mcp")]
    let routes = routes.merge(jobs::axum::mcp::mcp_routes());
    routes
        .layer(middleware::from_fn(authenticate))
        .with_state(catalog)
}

async fn run_note(http: &Http, url: &str) -> Reply {
    http.post(&format!("{url}/tools/run_take_note"), json!({"text": "hi"}))
        .await
}

async fn the_caller_header_is_ignored_unless_the_app_opts_in(backend: Backend) {
    let (_db, jobs) = setup(backend).await;
    let catalog = catalog(&jobs);
    let url = serve(authenticated(catalog.clone())).await;

    let claimed = Http::new().with_header("x-caller", "alice");
    let reply = run_note(&claimed, &url).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_eq!(stored_jobs(&jobs).await, 0);

    // Authenticated as bob and claiming to be alice: the call is bob's.
    let bob = claimed.with_header("authorization", "Bearer token-of-bob");
    let reply = run_note(&bob, &url).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let id = reply.json()["job_id"].as_str().unwrap().to_owned();
    assert_eq!(listed(&catalog, "bob").await, std::slice::from_ref(&id));
    assert!(listed(&catalog, "alice").await.is_empty());

    // Opted in, the header says who calls; an authenticated caller still wins.
    let trusting = jobs::axum::tool_routes()
        .layer(middleware::from_fn(jobs::axum::caller_from_header))
        .layer(middleware::from_fn(authenticate))
        .with_state(catalog.clone());
    let trusting = serve(trusting).await;
    let reply = run_note(&claimed, &trusting).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let alices = reply.json()["job_id"].as_str().unwrap().to_owned();
    assert_eq!(listed(&catalog, "alice").await, [alices]);
    let reply = run_note(&bob, &trusting).await;
    let bobs = reply.json()["job_id"].as_str().unwrap().to_owned();
    assert_eq!(listed(&catalog, "bob").await, [bobs, id]);
}

async fn a_request_without_identity_is_refused_with_401_and_stores_nothing(backend: Backend) {
    let (_db, jobs) = setup(backend).await;
    let url = serve(authenticated(catalog(&jobs))).await;
    let anonymous = Http::new();
    for reply in [
        run_note(&anonymous, &url).await,
        anonymous
            .post(&format!("{url}/tools/list_recurring_jobs"), json!({}))
            .await,
        // A blank caller is none.
        run_note(
            &anonymous.with_header("authorization", "Bearer token-of- "),
            &url,
        )
        .await,
    ] {
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
        assert_eq!(reply.json()["code"], "missing_caller", "{}", reply.body);
        assert!(reply.json()["error"].is_string(), "{}", reply.body);
    }
    #[cfg(feature = "mcp")]
    {
        let initialize = json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-03-26", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "1"}}
        });
        let reply = anonymous
            .with_header("accept", "application/json, text/event-stream")
            .with_header("x-caller", "alice")
            .post(&format!("{url}/mcp"), initialize)
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
        assert_eq!(reply.json()["code"], "missing_caller", "{}", reply.body);
    }
    // Listing the tools says nothing about anyone.
    assert_eq!(
        anonymous.get(&format!("{url}/tools")).await.status,
        StatusCode::OK
    );
    assert_eq!(stored_jobs(&jobs).await, 0);
}

fn quota_error(quota: &str, limit: u64, current: u64) -> impl Fn(&Value) {
    let quota = quota.to_owned();
    move |error: &Value| {
        assert_eq!(error["error"], "quota_exceeded", "{error}");
        assert_eq!(error["quota"], quota.as_str(), "{error}");
        assert_eq!(error["limit"], limit, "{error}");
        assert_eq!(error["current"], current, "{error}");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("nothing was stored"),
            "{error}"
        );
    }
}

async fn the_pending_jobs_quota_holds_and_says_which_quota(backend: Backend) {
    let (_db, jobs) = setup(backend).await;
    let catalog = catalog(&jobs).max_pending_jobs(2);
    let first = note(&catalog, "alice").await;
    note(&catalog, "alice").await;
    let error = catalog
        .call_tool("run_take_note", json!({"text": "3"}), "alice")
        .await
        .unwrap_err();
    assert_eq!(error.kind, ToolErrorKind::QuotaExceeded);
    assert_eq!(error.quota.as_ref().unwrap().quota, Quota::PendingJobs);
    quota_error("pending_jobs", 2, 2)(&serde_json::to_value(&error).unwrap());
    assert_eq!(stored_jobs(&jobs).await, 2, "nothing stored");
    // Another caller has a quota of its own.
    note(&catalog, "bob").await;

    // Over HTTP: 429 with the same structure.
    let url = serve(authenticated(catalog.clone())).await;
    let alice = Http::new().with_header("authorization", "Bearer token-of-alice");
    let reply = run_note(&alice, &url).await;
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.body
    );
    quota_error("pending_jobs", 2, 2)(&reply.json());
    #[cfg(feature = "mcp")]
    {
        let call = json!({
            "jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "run_take_note", "arguments": {"text": "4"}}
        });
        let reply = alice
            .with_header("accept", "application/json, text/event-stream")
            .post(&format!("{url}/mcp"), call)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let result = &reply.json()["result"];
        assert_eq!(result["isError"], true, "{}", reply.body);
        quota_error("pending_jobs", 2, 2)(&result["structuredContent"]);
    }
    assert_eq!(stored_jobs(&jobs).await, 3);

    // A deleted job makes room.
    catalog
        .call_tool("delete_job", json!({"id": first}), "alice")
        .await
        .unwrap();
    note(&catalog, "alice").await;
}

async fn the_recurring_jobs_quota_holds_and_says_which_quota(backend: Backend) {
    let (_db, jobs) = setup(backend).await;
    let catalog = catalog(&jobs).max_recurring_jobs(1);
    let first = schedule(&catalog, "alice").await;
    let args = json!({"topic": "t", "cron": "0 9 * * *"});
    let error = catalog
        .call_tool("schedule_digest_recurring", args.clone(), "alice")
        .await
        .unwrap_err();
    assert_eq!(error.kind, ToolErrorKind::QuotaExceeded);
    quota_error("recurring_jobs", 1, 1)(&serde_json::to_value(&error).unwrap());
    assert_eq!(jobs.recurring().list().await.unwrap().len(), 1);
    schedule(&catalog, "bob").await;

    let url = serve(authenticated(catalog.clone())).await;
    let reply = Http::new()
        .with_header("authorization", "Bearer token-of-alice")
        .post(&format!("{url}/tools/schedule_digest_recurring"), args)
        .await;
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.body
    );
    quota_error("recurring_jobs", 1, 1)(&reply.json());

    catalog
        .call_tool("delete_job", json!({"id": first}), "alice")
        .await
        .unwrap();
    schedule(&catalog, "alice").await;
    assert_eq!(jobs.recurring().list().await.unwrap().len(), 2);
}

async fn concurrent_calls_never_store_past_a_quota(backend: Backend) {
    let (_db, jobs) = setup(backend).await;
    let catalog = catalog(&jobs).max_pending_jobs(3).max_recurring_jobs(2);
    let calls = (0..12).map(|n| {
        let catalog = catalog.clone();
        tokio::spawn(async move {
            let (tool, args) = if n % 2 == 0 {
                ("run_take_note", json!({"text": "x"}))
            } else {
                (
                    "schedule_digest_recurring",
                    json!({"topic": "t", "cron": "0 8 * * *"}),
                )
            };
            match catalog.call_tool(tool, args, "alice").await {
                Ok(_) => true,
                Err(error) if error.kind == ToolErrorKind::QuotaExceeded => false,
                Err(error) => panic!("{error:?}"),
            }
        })
    });
    let mut stored = 0;
    for call in calls.collect::<Vec<_>>() {
        stored += usize::from(call.await.unwrap());
    }
    assert_eq!(stored, 5, "3 jobs and 2 recurring jobs");
    assert_eq!(stored_jobs(&jobs).await, 3);
    assert_eq!(jobs.recurring().list().await.unwrap().len(), 2);
}

async fn listing_pages_through_jobs_then_recurring_jobs(backend: Backend) {
    let (_db, jobs) = setup(backend).await;
    let catalog = catalog(&jobs);
    let mut expected = BTreeSet::new();
    for _ in 0..5 {
        expected.insert(note(&catalog, "alice").await);
    }
    for _ in 0..4 {
        expected.insert(schedule(&catalog, "alice").await);
    }
    note(&catalog, "bob").await;
    schedule(&catalog, "bob").await;

    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    let mut pages = 0;
    loop {
        let arguments = match &cursor {
            Value::Null => json!({"limit": 2}),
            cursor => json!({"limit": 2, "cursor": cursor}),
        };
        let (ids, next) = page(&catalog, "alice", arguments).await;
        assert!(ids.len() <= 2);
        seen.extend(ids);
        pages += 1;
        if next.is_null() {
            break;
        }
        cursor = next;
        assert!(pages < 10, "the cursor moves on");
    }
    assert_eq!(pages, 5, "9 items, 2 a page");
    assert_eq!(seen.len(), 9, "no item twice: {seen:?}");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), expected);

    // Jobs first, newest first; then recurring jobs.
    let (first, _) = page(&catalog, "alice", json!({"limit": 6})).await;
    assert!(first[5].starts_with("tool:digest:"), "{first:?}");
    // The default page holds all of them.
    let (all, next) = page(&catalog, "alice", json!({})).await;
    assert_eq!((all.len(), next), (9, Value::Null));

    for bad in [
        json!({"cursor": "nonsense"}),
        json!({"limit": 0}),
        json!({"limit": 101}),
    ] {
        let error = catalog
            .call_tool("list_recurring_jobs", bad.clone(), "alice")
            .await
            .unwrap_err();
        assert_eq!(error.kind, ToolErrorKind::InvalidArguments, "{bad}");
    }
}

/// Runs `statements` on the test's database, outside the client.
async fn execute(db: &TestDb, statements: &[&str]) {
    use sqlx::Connection;
    match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            for statement in statements {
                sqlx::query(statement).execute(&mut conn).await.unwrap();
            }
        }
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            for statement in statements {
                sqlx::query(statement).execute(&mut conn).await.unwrap();
            }
        }
        #[allow(unreachable_patterns)]
        _ => unreachable!(),
    }
}

async fn rows_of_earlier_releases_stay_with_the_caller_of_their_label(backend: Backend) {
    let (db, jobs) = setup(backend).await;
    let catalog = catalog(&jobs);
    let caller = "org:42:user:7 %_";
    let job = note(&catalog, caller).await;
    let recurring = schedule(&catalog, caller).await;
    // Not tool calls, or not telling one caller: nobody's.
    jobs.enqueue(CallerLabel { who: caller.into() })
        .await
        .unwrap();
    jobs.enqueue(TwoCallerLabels { who: caller.into() })
        .await
        .unwrap();
    // The schema and rows as an earlier release left them: no caller column.
    let version = match backend {
        Backend::Sqlite => 13,
        _ => 14,
    };
    execute(
        &db,
        &[
            "DROP INDEX jobs_job_caller",
            "DROP INDEX jobs_recurring_caller",
            "ALTER TABLE jobs_job DROP COLUMN caller",
            "ALTER TABLE jobs_recurring DROP COLUMN caller",
            &format!("DELETE FROM jobs_migration WHERE version = {version}"),
        ],
    )
    .await;

    let jobs = db.jobs(&ManualClock::new(start_time())).await;
    let catalog = self::catalog(&jobs);
    assert_eq!(listed(&catalog, caller).await, [job, recurring]);
    assert!(listed(&catalog, "org:42").await.is_empty());
}
