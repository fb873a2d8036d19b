//! "Remind me tomorrow at 10": a job scheduled for a time. It is a row in the database
//! from the moment it is enqueued, so it fires even if the app restarts in between.
//! Then "follow up in three days unless the user answered": the same job waits for the
//! answer durably, holding no worker, and sends one follow-up if none came.

use std::time::Duration;

use jobs::prelude::*;
use serde::{Deserialize, Serialize};

/// The event an answer to a reminder sends, keyed by the reminder's job id.
pub(crate) const ANSWERED: &str = "reminder-answered";

/// How long a reminder waits for an answer before its follow-up, unless the request
/// says otherwise.
pub(crate) const FOLLOW_UP_AFTER: Duration = Duration::from_secs(3 * 24 * 3600);

/// What the user answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Answer {
    pub(crate) text: String,
}

/// How a reminder ended, stored as its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// The user answered in time.
    Answered(Answer),
    /// Nobody answered: one follow-up was sent.
    FollowedUp,
}

/// Delivers a reminder, then waits for the answer and follows up once if none comes. A
/// real app would send an email or a push notification here; this one prints it. The
/// `name` pins the stored name, so every example (and a later refactor) runs the
/// reminders already in `jobs.db`.
#[job(
    name = "reminders.send",
    retries = 5,
    display = "Remind user {user_id}: {text}"
)]
pub(crate) async fn send_reminder(
    ctx: JobContext,
    user_id: u64,
    text: String,
    follow_up_after_secs: Option<u64>,
) -> Result<Outcome, jobs::Error> {
    // A step: the wait below resumes the job from the top, and the reminder must not
    // go out twice.
    ctx.step("deliver", || async {
        println!("🔔 reminder for user {user_id}: {text} (job {})", ctx.id());
        Ok::<_, jobs::Error>(())
    })
    .await?;
    let wait = follow_up_after_secs.map_or(FOLLOW_UP_AFTER, Duration::from_secs);
    let key = ctx.id().to_string();
    match ctx.wait_for_event::<Answer>(ANSWERED, &key, wait).await? {
        Some(answer) => Ok(Outcome::Answered(answer)),
        None => {
            ctx.step("follow up", || async {
                println!("🔁 no answer from user {user_id} to \"{text}\": following up");
                Ok::<_, jobs::Error>(())
            })
            .await?;
            Ok(Outcome::FollowedUp)
        }
    }
}

/// `POST /reminders`, `GET /reminders` and `POST /reminders/{id}/answer`.
pub(crate) mod http {
    use axum::extract::{FromRef, Path, State};
    use axum::http::StatusCode;
    use axum::routing::post;
    use axum::{Json, Router};
    use chrono::{DateTime, FixedOffset, Utc};
    use jobs::{Job, JobId, JobQuery, JobState, JobSummary, Jobs, Page};
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    use super::{ANSWERED, Answer, SendReminder};

    /// The routes, for any app state that holds the `Jobs` client.
    pub(crate) fn routes<S>() -> Router<S>
    where
        Jobs: FromRef<S>,
        S: Clone + Send + Sync + 'static,
    {
        Router::new()
            .route("/reminders", post(create).get(list))
            .route("/reminders/{id}/answer", post(answer))
    }

    /// `{"user_id": 7, "text": "Review the Q3 deck", "at": "2026-11-28T10:00:00+01:00"}`,
    /// or `"in_seconds": 30` instead of `"at"`; `"follow_up_seconds"` (default three
    /// days) is how long it waits for an answer before following up.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NewReminder {
        user_id: u64,
        text: String,
        /// RFC 3339, with its offset.
        at: Option<DateTime<FixedOffset>>,
        in_seconds: Option<u64>,
        follow_up_seconds: Option<u64>,
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
            follow_up_after_secs: new.follow_up_seconds,
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

    /// `{"text": "Done, thanks"}`: the user's answer to the reminder `id`; its
    /// follow-up is called off. An answer that comes before the reminder waits for it
    /// is kept (for a week) and counts when it does.
    async fn answer(
        State(jobs): State<Jobs>,
        Path(id): Path<JobId>,
        Json(answer): Json<Answer>,
    ) -> Reply<serde_json::Value> {
        match jobs.send_event(ANSWERED, &id.to_string(), &answer).await {
            Ok(resumed) => Ok((StatusCode::OK, Json(json!({ "resumed": resumed })))),
            Err(failure) => Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &failure.to_string(),
            )),
        }
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
