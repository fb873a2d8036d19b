//! "Every morning at 8": a recurring job declared on the fn. Every server upserts it at
//! boot; the ticker fires it once per tick however many replicas run, and a run
//! missed while the app was down runs once when it comes back.

use std::sync::{Arc, Mutex};

use jobs::prelude::*;

/// A stand-in for a mailbox: the summaries the job wrote.
#[derive(Clone, Default)]
pub(crate) struct Inbox {
    summaries: Arc<Mutex<Vec<String>>>,
}

impl Inbox {
    pub(crate) fn summaries(&self) -> Vec<String> {
        self.summaries.lock().unwrap().clone()
    }
}

/// Summarizes the inbox at 08:00 Brussels time every day.
#[recurring(
    id = "morning-email-summary",
    cron = "0 8 * * *",
    zone = "Europe/Brussels"
)]
#[job(name = "inbox.summarize", display = "Summarize inbox", retries = 3)]
pub(crate) async fn summarize_inbox(State(inbox): State<Inbox>, ctx: JobContext) {
    ctx.log().info("reading the inbox");
    let summary = format!(
        "{}: 3 new messages, 1 needs a reply",
        ctx.now().date_naive()
    );
    ctx.log().info(format!("summary: {summary}"));
    inbox.summaries.lock().unwrap().push(summary);
}

/// `GET /inbox/summaries`, and `POST /inbox/summarize-now`, which triggers the
/// recurring job at once without changing its schedule.
pub(crate) mod http {
    use axum::extract::{FromRef, State};
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use jobs::Jobs;
    use serde_json::{Value, json};

    use super::Inbox;

    pub(crate) fn routes<S>() -> Router<S>
    where
        Jobs: FromRef<S>,
        Inbox: FromRef<S>,
        S: Clone + Send + Sync + 'static,
    {
        Router::new()
            .route("/inbox/summaries", get(summaries))
            .route("/inbox/summarize-now", post(summarize_now))
    }

    async fn summaries(State(inbox): State<Inbox>) -> Json<Vec<String>> {
        Json(inbox.summaries())
    }

    async fn summarize_now(State(jobs): State<Jobs>) -> (StatusCode, Json<Value>) {
        match jobs.recurring().trigger("morning-email-summary").await {
            Ok(id) => (StatusCode::ACCEPTED, Json(json!({ "job_id": id }))),
            Err(error) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({ "error": error.to_string() })),
            ),
        }
    }
}
