//! The examples' scenarios, tested the way an application tests its own jobs: with
//! `jobs::testing` (what was enqueued, one job inline, drain what is due) and a manual
//! clock, never a sleep. The modules are the examples' own files.

use std::time::Duration;

use crate::support::http::Http;
use crate::support::{Backend, TestDb};
use axum::Router;
use axum::http::StatusCode;
use jobs::testing::{self, Inline, ManualClock};
use jobs::{Clock, JobServer, JobState, Jobs};
use serde_json::json;
use tokio::net::TcpListener;

#[path = "../../examples/shared/documents.rs"]
#[allow(dead_code)]
mod documents;
#[path = "../../examples/shared/reminders.rs"]
#[allow(dead_code)]
mod reminders;

use documents::{
    Approval, DEMO_DOCUMENT, Documents, Embed, FakeModel, Publication, Publish, Summarize,
};
use reminders::SendReminder;

async fn client(db: &TestDb) -> (ManualClock, Jobs) {
    let clock = ManualClock::new(crate::support::start_time());
    let jobs = db.jobs(&clock).await;
    (clock, jobs)
}

/// The demo document as the example's API shows it.
fn document(documents: &Documents) -> serde_json::Value {
    serde_json::to_value(documents.get(DEMO_DOCUMENT).unwrap()).unwrap()
}

/// The document example's app: its routes on a port of their own, over `jobs`.
struct DocumentApp {
    documents: Documents,
    url: String,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
}

#[derive(Clone, axum::extract::FromRef)]
struct DocumentState {
    jobs: Jobs,
    documents: Documents,
}

impl DocumentApp {
    async fn serve(jobs: &Jobs) -> Self {
        let documents = Documents::with_samples();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/documents", listener.local_addr().unwrap());
        let app: Router = documents::http::routes().with_state(DocumentState {
            jobs: jobs.clone(),
            documents: documents.clone(),
        });
        let serving = tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            documents,
            url,
            serving,
        }
    }

    /// A server running the example's jobs with its state, its model answering at once.
    fn server(&self, jobs: &Jobs) -> jobs::JobServerBuilder {
        JobServer::builder(jobs.clone())
            .state(self.documents.clone())
            .state(FakeModel::flaky().without_latency())
            .poll_interval(Duration::from_millis(50))
    }

    /// Runs the demo document's analysis up to its wait for an approval: the first
    /// summary fails and is retried after its back-off, then the chunks are embedded as
    /// a batch whose fan-in stores the embedding and waits. Returns the fan-in.
    async fn analyze_until_approval(&self, jobs: &Jobs, clock: &ManualClock) -> jobs::JobInfo {
        documents::analyze(jobs, DEMO_DOCUMENT).await.unwrap();
        let summarize =
            testing::assert_enqueued::<Summarize>(jobs, |job| job.document_id == DEMO_DOCUMENT)
                .await;
        let embed =
            testing::assert_enqueued::<Embed>(jobs, |job| job.document_id == DEMO_DOCUMENT).await;
        assert_eq!(
            embed.state,
            JobState::Awaiting,
            "embed waits for the summary"
        );

        // The first summary fails: it waits for its retry; nothing after it ran.
        let drained = testing::drain(self.server(jobs)).await.unwrap();
        assert_eq!(
            (drained.succeeded, drained.failed, drained.scheduled),
            (0, 0, 1)
        );
        let retry = jobs.get(summarize.id).await.unwrap();
        assert_eq!((retry.state, retry.attempt), (JobState::Scheduled, 1));

        // Its time comes: the summary, the embed step and its four chunks (the summary
        // and three sentences) run; the fan-in stores the embedding and waits.
        clock.set(retry.run_at);
        let drained = testing::drain(self.server(jobs)).await.unwrap();
        assert_eq!(
            (drained.succeeded, drained.failed, drained.scheduled),
            (6, 0, 1)
        );
        let batch = jobs.result::<Embed>(embed.id).await.unwrap().unwrap();
        let status = jobs.batch_status(batch).await.unwrap();
        assert_eq!((status.total, status.succeeded), (4, 4));
        let publish = jobs.get(status.then_id.unwrap()).await.unwrap();
        assert_eq!(publish.state, JobState::Scheduled, "waits for the approval");
        assert_eq!(
            publish.run_at,
            clock.now() + chrono::Duration::hours(48),
            "for 48 hours at most"
        );
        let document = document(&self.documents);
        assert_eq!(document["embedding"].as_array().unwrap().len(), 8);
        assert_eq!(document["analyzed"], false);
        publish
    }

    async fn approve(&self, by: &str) -> crate::support::http::Reply {
        Http::new()
            .post(
                &format!("{}/{DEMO_DOCUMENT}/approve", self.url),
                json!({ "by": by }),
            )
            .await
    }
}

/// The document pipeline: summarize fails once on the demo document and is retried;
/// the chunks are embedded as a batch, and the analysis is announced once a person
/// approves it over HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_analysis_retries_embeds_in_a_batch_and_waits_for_its_approval() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (clock, jobs) = client(&db).await;
    let app = DocumentApp::serve(&jobs).await;
    let publish = app.analyze_until_approval(&jobs, &clock).await;

    let reply = app.approve("ana").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let drained = testing::drain(app.server(&jobs)).await.unwrap();
    assert_eq!(
        (drained.succeeded, drained.failed, drained.scheduled),
        (7, 0, 0)
    );
    let outcome = jobs.result::<Publish>(publish.id).await.unwrap();
    let approval = Approval { by: "ana".into() };
    assert_eq!(outcome, Some(Publication::Announced(approval)));
    let document = document(&app.documents);
    assert_eq!(
        (&document["analyzed"], &document["approved_by"]),
        (&json!(true), &json!("ana"))
    );
    let again = app.approve("ben").await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    testing::refute_enqueued::<Embed>(&jobs, |_| true).await;
    app.serving.abort();
}

/// The app restarts while the analysis waits for its approval (its documents, kept in
/// memory, start over): the approval still finds the waiting job, in the job store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_after_the_app_restarted_still_reaches_the_waiting_analysis() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (clock, jobs) = client(&db).await;
    let before = DocumentApp::serve(&jobs).await;
    let publish = before.analyze_until_approval(&jobs, &clock).await;
    before.serving.abort();

    let after = DocumentApp::serve(&jobs).await;
    let reply = after.approve("ana").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    testing::drain(after.server(&jobs)).await.unwrap();
    let outcome = jobs.result::<Publish>(publish.id).await.unwrap();
    let approval = Approval { by: "ana".into() };
    assert_eq!(outcome, Some(Publication::Announced(approval)));
    after.serving.abort();
}

/// Nobody approves the analysis: after 48 hours it gives up, unannounced, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_analysis_nobody_approves_expires_after_48_hours_unannounced() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (clock, jobs) = client(&db).await;
    let app = DocumentApp::serve(&jobs).await;
    let publish = app.analyze_until_approval(&jobs, &clock).await;

    clock.advance(Duration::from_secs(48 * 3600));
    let drained = testing::drain(app.server(&jobs)).await.unwrap();
    assert_eq!((drained.succeeded, drained.scheduled), (7, 0));
    let outcome = jobs.result::<Publish>(publish.id).await.unwrap();
    assert_eq!(outcome, Some(Publication::Expired));
    assert_eq!(document(&app.documents)["analyzed"], false);
    let late = app.approve("ana").await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.body);
    app.serving.abort();
}

/// One step run inline with the example's state: its failure, then its success on the
/// next attempt, with the log lines and progress it reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summarize_step_runs_inline_with_the_apps_state() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (_clock, jobs) = client(&db).await;
    let documents = Documents::with_samples();
    let inline = Inline::new(&jobs)
        .state(documents.clone())
        .state(FakeModel::flaky().without_latency());
    let step = Summarize {
        document_id: DEMO_DOCUMENT,
    };

    let first = inline.clone().attempt(1).perform(&step).await;
    let failure = first.result.unwrap_err();
    assert_eq!(failure.message(), "the model call `summarize` failed");
    assert_eq!(first.progress, Some((1, 3)));

    let second = inline.clone().attempt(2).perform(&step).await;
    // The step's result is the summary, what the embed step receives next.
    let summary = second.result.as_ref().expect("the second attempt succeeds");
    assert!(
        second.logs.contains(&format!("summary: {summary}")),
        "{:?}",
        second.logs
    );
    assert_eq!(second.progress, Some((3, 3)));
    assert!(
        second.logs.iter().any(|line| line.starts_with("summary: ")),
        "{:?}",
        second.logs
    );
    assert!(document(&documents)["summary"].is_string());
    // Inline runs store nothing.
    assert_eq!(jobs.count_by_state().await.unwrap(), []);
}

/// "Remind me in a minute" through the example's HTTP route: the reminder waits for its
/// time, runs once, then waits for the user's answer without a worker; one answered in
/// time ends it, one that nobody answers gets one follow-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_posted_over_http_runs_when_its_time_comes_and_follows_up() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (clock, jobs) = client(&db).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/reminders", listener.local_addr().unwrap());
    let app: Router = reminders::http::routes().with_state(jobs.clone());
    let serving = tokio::spawn(async move { axum::serve(listener, app).await });
    let http = Http::new();
    let post = |body: serde_json::Value| {
        let (http, url) = (&http, &url);
        async move {
            let reply = http.post(url, body).await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        }
    };

    post(json!({ "user_id": 7, "text": "Review the Q3 deck", "in_seconds": 60 })).await;
    post(json!({
        "user_id": 8, "text": "Send the invoice", "in_seconds": 60, "follow_up_seconds": 3600
    }))
    .await;
    let answered = testing::assert_enqueued::<SendReminder>(&jobs, |job| {
        job.user_id == 7 && job.text == "Review the Q3 deck"
    })
    .await;
    assert_eq!(answered.run_at, clock.now() + chrono::Duration::seconds(60));
    let unanswered = testing::assert_enqueued::<SendReminder>(&jobs, |job| job.user_id == 8).await;

    let server = || JobServer::builder(jobs.clone()).poll_interval(Duration::from_millis(50));
    let drained = testing::drain(server()).await.unwrap();
    assert_eq!((drained.succeeded, drained.scheduled), (0, 2), "not yet");

    // Both delivered; both now wait for an answer, holding no worker.
    clock.advance(Duration::from_secs(61));
    let drained = testing::drain(server()).await.unwrap();
    assert_eq!((drained.succeeded, drained.scheduled), (0, 2));
    let reply = http
        .post(
            &format!("{url}/{}/answer", answered.id),
            json!({ "text": "Done, thanks" }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let drained = testing::drain(server()).await.unwrap();
    assert_eq!((drained.succeeded, drained.scheduled), (1, 1));
    let outcome = jobs.result::<SendReminder>(answered.id).await.unwrap();
    assert_eq!(
        outcome,
        Some(reminders::Outcome::Answered(reminders::Answer {
            text: "Done, thanks".into()
        }))
    );

    // An hour on, nobody answered the other: one follow-up.
    clock.advance(Duration::from_secs(3600));
    let drained = testing::drain(server()).await.unwrap();
    assert_eq!((drained.succeeded, drained.scheduled), (2, 0));
    let outcome = jobs.result::<SendReminder>(unanswered.id).await.unwrap();
    assert_eq!(outcome, Some(reminders::Outcome::FollowedUp));
    testing::refute_enqueued::<SendReminder>(&jobs, |_| true).await;
    serving.abort();
}
