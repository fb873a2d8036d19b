//! Batches: one batch's progress with a page of its members, and the actions on it as
//! one (delete, requeue).

use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use jobs_core::{BatchId, BatchStatus, JobQuery, JobSummary, Jobs, Page};
use serde::{Deserialize, Serialize};

use super::{ApiError, non_empty, parse_id};

pub(super) fn routes<S>() -> Router<S>
where
    Jobs: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/batches/{id}", get(batch).delete(delete))
        .route("/api/batches/{id}/requeue", post(requeue))
}

/// `?after=&limit=` for the page of members, both optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberParams {
    after: Option<String>,
    limit: Option<String>,
}

/// A batch's progress and a page of its members, newest first.
#[derive(Debug, Serialize)]
pub(in super::super) struct BatchDetail {
    #[serde(flatten)]
    status: BatchStatus,
    members: Page<JobSummary>,
}

/// How many members an action changed.
#[derive(Debug, Serialize)]
struct Count {
    count: u64,
}

pub(in super::super) fn parse_batch(id: &str) -> Result<BatchId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a batch id (a UUID)")))
}

/// The batch's progress and the page of members `query` (its filters plus the batch)
/// selects; also the `batch` topic of the event stream.
pub(in super::super) async fn batch_detail(
    jobs: &Jobs,
    id: BatchId,
    query: JobQuery,
) -> Result<BatchDetail, ApiError> {
    let status = jobs.batch_status(id).await?;
    let members = jobs.list(query.batch(id)).await?;
    Ok(BatchDetail { status, members })
}

async fn batch(
    State(jobs): State<Jobs>,
    Path(id): Path<String>,
    Query(params): Query<MemberParams>,
) -> Result<Json<BatchDetail>, ApiError> {
    let id = parse_batch(&id)?;
    let mut query = JobQuery::default();
    if let Some(after) = non_empty(params.after) {
        query = query.after(parse_id(&after).map_err(|error| error.prefixed("after"))?);
    }
    if let Some(limit) = non_empty(params.limit) {
        let limit = limit.parse().map_err(|_| {
            ApiError::bad_request(format!("limit: expected a whole number, got {limit:?}"))
        })?;
        query = query.limit(limit);
    }
    Ok(Json(batch_detail(&jobs, id, query).await?))
}

async fn delete(State(jobs): State<Jobs>, Path(id): Path<String>) -> Result<Json<Count>, ApiError> {
    let count = jobs.batch_delete(parse_batch(&id)?).await?;
    Ok(Json(Count { count }))
}

async fn requeue(
    State(jobs): State<Jobs>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Count>), ApiError> {
    let count = jobs.batch_requeue(parse_batch(&id)?).await?;
    Ok((StatusCode::OK, Json(Count { count })))
}
