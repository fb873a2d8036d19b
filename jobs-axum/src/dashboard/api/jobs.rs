//! Jobs: a filtered page, one job with its attempts, and the actions on one job or on
//! every job a filter matches.

use axum::body::Bytes;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use jobs_core::{
    ErrorInfo, HistoryEntry, JobId, JobInfo, JobQuery, JobState, JobSummary, Jobs, Page,
    registered_jobs,
};
use serde::{Deserialize, Serialize};

use super::{ApiError, Filters, Items, non_empty, parse_id};

pub(super) fn routes<S>() -> Router<S>
where
    Jobs: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/jobs", get(list))
        .route("/api/jobs/requeue", post(requeue_matching))
        .route("/api/jobs/delete", post(delete_matching))
        .route("/api/jobs/{id}", get(job).delete(delete))
        .route("/api/jobs/{id}/requeue", post(requeue))
        .route("/api/registered-jobs", get(registered))
}

/// `?state=&name=&search=&label=&after=&limit=`, all optional, parsed here so a bad value gets
/// a JSON error that names the parameter.
#[derive(Debug, Default, Deserialize)]
pub(in super::super) struct ListParams {
    state: Option<String>,
    name: Option<String>,
    search: Option<String>,
    label: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

impl ListParams {
    pub(in super::super) fn query(self) -> Result<JobQuery, ApiError> {
        let mut query = Filters {
            state: self.state,
            name: self.name,
            search: self.search,
            label: self.label,
        }
        .query()?;
        if let Some(after) = non_empty(self.after) {
            query = query.after(parse_id(&after).map_err(|error| error.prefixed("after"))?);
        }
        if let Some(limit) = non_empty(self.limit) {
            let limit = limit.parse().map_err(|_| {
                ApiError::bad_request(format!("limit: expected a whole number, got {limit:?}"))
            })?;
            query = query.limit(limit);
        }
        Ok(query)
    }
}

async fn list(
    State(jobs): State<Jobs>,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<JobSummary>>, ApiError> {
    Ok(Json(jobs.list(params.query()?).await?))
}

/// A job with its history, and that history read as attempts.
#[derive(Debug, Serialize)]
pub(in super::super) struct JobDetail {
    #[serde(flatten)]
    job: JobInfo,
    /// Every attempt, oldest first (a requeue starts counting again from 1).
    attempts: Vec<Attempt>,
}

/// One run of a job: from its claim to its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Attempt {
    attempt: u32,
    server: Option<String>,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    /// `running`, `succeeded`, `retried` (failed, another attempt is scheduled),
    /// `failed` (for good), `released` (put back at a shutdown) or `deleted`.
    outcome: &'static str,
    error: Option<ErrorInfo>,
}

/// Pairs each `Processing` entry with the entry that ended it.
fn attempts(history: &[HistoryEntry]) -> Vec<Attempt> {
    let mut attempts: Vec<Attempt> = Vec::new();
    for entry in history {
        if entry.state == JobState::Processing {
            attempts.push(Attempt {
                attempt: entry.attempt,
                server: entry.server.clone(),
                started_at: entry.at,
                finished_at: None,
                outcome: "running",
                error: None,
            });
            continue;
        }
        let Some(open) = attempts
            .last_mut()
            .filter(|attempt| attempt.finished_at.is_none())
        else {
            continue;
        };
        open.outcome = match entry.state {
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Scheduled => "retried",
            JobState::Deleted => "deleted",
            JobState::Enqueued | JobState::Awaiting | JobState::Processing => "released",
        };
        open.finished_at = Some(entry.at);
        open.error = entry.error.clone();
    }
    attempts
}

pub(in super::super) async fn job_detail(jobs: &Jobs, id: JobId) -> Result<JobDetail, ApiError> {
    let job = jobs.get(id).await?;
    Ok(JobDetail {
        attempts: attempts(&job.history),
        job,
    })
}

async fn job(
    State(jobs): State<Jobs>,
    Path(id): Path<String>,
) -> Result<Json<JobDetail>, ApiError> {
    Ok(Json(job_detail(&jobs, parse_id(&id)?).await?))
}

async fn delete(State(jobs): State<Jobs>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    if jobs.delete(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(jobs_core::Error::JobNotFound(id).into())
    }
}

/// Answers the job as it is after the requeue, so the page shows it at once.
async fn requeue(
    State(jobs): State<Jobs>,
    Path(id): Path<String>,
) -> Result<Json<JobDetail>, ApiError> {
    let id = parse_id(&id)?;
    if !jobs.requeue(id).await? {
        // Not requeued: tell a missing job from one that cannot be requeued now.
        let job = jobs.get(id).await?;
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "job {id} is {}: it can be requeued once it has finished",
                job.state
            ),
        ));
    }
    Ok(Json(job_detail(&jobs, id).await?))
}

/// How many jobs a bulk action changed.
#[derive(Debug, Serialize)]
struct Count {
    count: u64,
}

async fn requeue_matching(State(jobs): State<Jobs>, body: Bytes) -> Result<Json<Count>, ApiError> {
    let query = bulk_query(&body, "requeue")?;
    Ok(Json(Count {
        count: jobs.requeue_matching(&query).await?,
    }))
}

async fn delete_matching(State(jobs): State<Jobs>, body: Bytes) -> Result<Json<Count>, ApiError> {
    let query = bulk_query(&body, "delete")?;
    Ok(Json(Count {
        count: jobs.delete_matching(&query).await?,
    }))
}

/// The filters of a bulk action, from a JSON body. At least one must be set: a click
/// should never requeue or delete every job in the store.
fn bulk_query(body: &[u8], action: &str) -> Result<JobQuery, ApiError> {
    let filters: Filters = serde_json::from_slice(body).map_err(|error| {
        ApiError::bad_request(format!(
            "expected a JSON object with `state`, `name`, `search` or `label`: {error}"
        ))
    })?;
    let query = filters.query()?;
    if query.state.is_none()
        && query.name.is_none()
        && query.search.is_none()
        && query.label.is_none()
    {
        return Err(ApiError::bad_request(format!(
            "refusing to {action} every job: give a `state`, `name`, `search` or `label`"
        )));
    }
    Ok(query)
}

/// The job names this binary can run, sorted.
async fn registered() -> Json<Items<&'static str>> {
    Json(Items {
        items: registered_jobs(),
    })
}
