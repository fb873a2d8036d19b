//! Recurring jobs: their schedules, and trigger, delete, enable and disable.

use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use jobs_core::{JobId, Jobs, RecurringInfo};
use serde::Serialize;

use super::{ApiError, Items, without_nul};

pub(super) fn routes<S>() -> Router<S>
where
    Jobs: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/recurring-jobs", get(list))
        .route("/api/recurring-jobs/{id}", get(one).delete(delete))
        .route("/api/recurring-jobs/{id}/trigger", post(trigger))
        .route("/api/recurring-jobs/{id}/enable", post(enable))
        .route("/api/recurring-jobs/{id}/disable", post(disable))
}

pub(in super::super) async fn read_recurring(
    jobs: &Jobs,
) -> Result<Items<RecurringInfo>, ApiError> {
    Ok(Items {
        items: jobs.recurring().list().await?,
    })
}

async fn list(State(jobs): State<Jobs>) -> Result<Json<Items<RecurringInfo>>, ApiError> {
    Ok(Json(read_recurring(&jobs).await?))
}

async fn one(
    State(jobs): State<Jobs>,
    Path(id): Path<String>,
) -> Result<Json<RecurringInfo>, ApiError> {
    without_nul("id", &id)?;
    Ok(Json(jobs.recurring().get(&id).await?))
}

/// The run a trigger created.
#[derive(Debug, Serialize)]
struct Triggered {
    job_id: JobId,
}

/// Runs it once now; its schedule is unchanged.
async fn trigger(
    State(jobs): State<Jobs>,
    Path(id): Path<String>,
) -> Result<Json<Triggered>, ApiError> {
    without_nul("id", &id)?;
    Ok(Json(Triggered {
        job_id: jobs.recurring().trigger(&id).await?,
    }))
}

/// Deletes the schedule; its past runs stay.
async fn delete(State(jobs): State<Jobs>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    without_nul("id", &id)?;
    if jobs.recurring().delete(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(jobs_core::Error::RecurringNotFound(id).into())
    }
}

async fn enable(
    State(jobs): State<Jobs>,
    Path(id): Path<String>,
) -> Result<Json<RecurringInfo>, ApiError> {
    set_enabled(&jobs, &id, true).await
}

async fn disable(
    State(jobs): State<Jobs>,
    Path(id): Path<String>,
) -> Result<Json<RecurringInfo>, ApiError> {
    set_enabled(&jobs, &id, false).await
}

/// Answers the recurring job as it is after the change.
async fn set_enabled(
    jobs: &Jobs,
    id: &str,
    enabled: bool,
) -> Result<Json<RecurringInfo>, ApiError> {
    without_nul("id", id)?;
    jobs.recurring().set_enabled(id, enabled).await?;
    Ok(Json(jobs.recurring().get(id).await?))
}
