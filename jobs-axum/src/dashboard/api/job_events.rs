//! Events sent to waiting jobs: `POST /api/events/{name}/{key}` with the event's payload
//! as the JSON body (none is `null`), answered with how many jobs it resumed. (Not the
//! dashboard's own `GET /api/events`, its live updates.)

use axum::body::Bytes;
use axum::extract::{FromRef, Path, State};
use axum::routing::post;
use axum::{Json, Router};
use jobs_core::Jobs;
use serde::Serialize;

use super::{ApiError, without_nul};

pub(super) fn routes<S>() -> Router<S>
where
    Jobs: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new().route("/api/events/{name}/{key}", post(send))
}

/// How many waiting jobs the event resumed (0: it is kept for waits that begin later).
#[derive(Debug, Serialize)]
struct Sent {
    resumed: u64,
}

async fn send(
    State(jobs): State<Jobs>,
    Path((name, key)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Sent>, ApiError> {
    without_nul("name", &name)?;
    without_nul("key", &key)?;
    let payload: serde_json::Value = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&body).map_err(|error| {
            ApiError::bad_request(format!("expected the event's payload as JSON: {error}"))
        })?
    };
    Ok(Json(Sent {
        resumed: jobs.send_event(&name, &key, &payload).await?,
    }))
}
