//! "Remind me tomorrow at 10": a job scheduled for a time. It is a row in the database
//! from the moment it is enqueued, so it fires even if the app restarts in between.

use jobs::prelude::*;

/// Delivers a reminder. A real app would send an email or a push notification here;
/// this one prints it. The `name` pins the stored name, so every example (and a later
/// refactor) runs the reminders already in `jobs.db`.
#[job(
    name = "reminders.send",
    retries = 5,
    display = "Remind user {user_id}: {text}"
)]
pub(crate) async fn send_reminder(ctx: JobContext, user_id: u64, text: String) {
    println!("🔔 reminder for user {user_id}: {text} (job {})", ctx.id());
}

/// `POST /reminders` and `GET /reminders`.
pub(crate) mod http {
    use axum::extract::{FromRef, State};
    use axum::http::StatusCode;
    use axum::routing::post;
    use axum::{Json, Router};
    use chrono::{DateTime, FixedOffset, Utc};
    use jobs::{Job, JobId, JobQuery, JobState, JobSummary, Jobs, Page};
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    use super::SendReminder;

    /// The routes, for any app state that holds the `Jobs` client.
    pub(crate) fn routes<S>() -> Router<S>
    where
        Jobs: FromRef<S>,
        S: Clone + Send + Sync + 'static,
    {
        Router::new().route("/reminders", post(create).get(list))
    }

    /// `{"user_id": 7, "text": "Review the Q3 deck", "at": "2026-11-28T10:00:00+01:00"}`,
    /// or `"in_seconds": 30` instead of `"at"`.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NewReminder {
        user_id: u64,
        text: String,
        /// RFC 3339, with its offset.
        at: Option<DateTime<FixedOffset>>,
        in_seconds: Option<u64>,
    }

    #[derive(Debug, Serialize)]
    struct Scheduled {
        job_id: JobId,
        state: JobState,
        run_at: DateTime<Utc>,
    }

    type Reply<T> = Result<(StatusCode, Json<T>), (StatusCode, Json<serde_json::Value>)>;

    async fn create(State(jobs): State<Jobs>, Json(new): Json<NewReminder>) -> Reply<Scheduled> {
        let reminder = SendReminder {
            user_id: new.user_id,
            text: new.text,
        };
        let enqueued = match (new.at, new.in_seconds) {
            (Some(at), None) => jobs.enqueue(reminder).at(at).await,
            (None, Some(seconds)) => {
                jobs.enqueue(reminder)
                    .after(std::time::Duration::from_secs(seconds))
                    .await
            }
            _ => {
                return Err(error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "give either `at` (RFC 3339, e.g. 2026-11-28T10:00:00+01:00) or `in_seconds`",
                ));
            }
        };
        let info = match enqueued {
            Ok(id) => jobs.get(id).await,
            Err(failure) => Err(failure),
        }
        .map_err(|failure| error(StatusCode::INTERNAL_SERVER_ERROR, &failure.to_string()))?;
        Ok((
            StatusCode::CREATED,
            Json(Scheduled {
                job_id: info.id,
                state: info.state,
                run_at: info.run_at,
            }),
        ))
    }

    /// The reminders still waiting for their time.
    async fn list(State(jobs): State<Jobs>) -> Reply<Page<JobSummary>> {
        let query = JobQuery::state(JobState::Scheduled).name(SendReminder::DESCRIPTOR.name());
        match jobs.list(query).await {
            Ok(page) => Ok((StatusCode::OK, Json(page))),
            Err(failure) => Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &failure.to_string(),
            )),
        }
    }

    fn error(status: StatusCode, message: &str) -> (StatusCode, Json<serde_json::Value>) {
        (status, Json(json!({ "error": message })))
    }
}
