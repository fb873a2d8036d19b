//! The JSON API: stats, job pages, one job, delete.

use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jobs_core::{JobId, JobInfo, JobQuery, JobState, JobSummary, Jobs, Page};
use serde::{Deserialize, Serialize};

pub(super) fn routes<S>() -> Router<S>
where
    Jobs: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/stats", get(stats))
        .route("/api/jobs", get(list))
        .route("/api/jobs/{id}", get(job).delete(delete))
}

/// How many jobs are in each state: every state, in display order, 0 when empty.
#[derive(Debug, Serialize)]
pub(super) struct Stats {
    #[serde(serialize_with = "as_map")]
    pub(super) counts: Vec<(JobState, u64)>,
    pub(super) total: u64,
}

fn as_map<S: serde::Serializer>(
    counts: &[(JobState, u64)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(counts.iter().map(|(state, count)| (state, count)))
}

pub(super) async fn read_stats(jobs: &Jobs) -> Result<Stats, ApiError> {
    let stored = jobs.count_by_state().await?;
    let counts: Vec<(JobState, u64)> = JobState::ALL
        .into_iter()
        .map(|state| {
            let count = stored
                .iter()
                .find_map(|&(stored, count)| (stored == state).then_some(count))
                .unwrap_or(0);
            (state, count)
        })
        .collect();
    let total = counts.iter().map(|(_, count)| count).sum();
    Ok(Stats { counts, total })
}

async fn stats(State(jobs): State<Jobs>) -> Result<Json<Stats>, ApiError> {
    Ok(Json(read_stats(&jobs).await?))
}

/// `?state=&name=&after=&limit=`, all optional, parsed here so a bad value gets a JSON
/// error that names the parameter.
#[derive(Debug, Deserialize)]
struct ListParams {
    state: Option<String>,
    name: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

impl ListParams {
    fn query(self) -> Result<JobQuery, ApiError> {
        let mut query = JobQuery::default();
        if let Some(state) = non_empty(self.state) {
            query.state = Some(
                state
                    .parse()
                    .map_err(|error| ApiError::bad_request(format!("state: {error}")))?,
            );
        }
        if let Some(name) = non_empty(self.name) {
            query = query.name(name);
        }
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

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|value| !value.is_empty())
}

async fn list(
    State(jobs): State<Jobs>,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<JobSummary>>, ApiError> {
    Ok(Json(jobs.list(params.query()?).await?))
}

async fn job(State(jobs): State<Jobs>, Path(id): Path<String>) -> Result<Json<JobInfo>, ApiError> {
    Ok(Json(jobs.get(parse_id(&id)?).await?))
}

async fn delete(State(jobs): State<Jobs>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    if jobs.delete(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(jobs_core::Error::JobNotFound(id).into())
    }
}

fn parse_id(id: &str) -> Result<JobId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a job id (a UUID)")))
}

/// An API failure: its status and a message, answered as `{"error": "…"}`.
#[derive(Debug)]
pub(super) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn bad_request(message: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message,
        }
    }

    fn prefixed(self, parameter: &str) -> Self {
        Self {
            message: format!("{parameter}: {}", self.message),
            ..self
        }
    }

    pub(super) fn status(&self) -> StatusCode {
        self.status
    }

    pub(super) fn message(&self) -> &str {
        &self.message
    }
}

impl From<jobs_core::Error> for ApiError {
    fn from(error: jobs_core::Error) -> Self {
        let status = match error {
            jobs_core::Error::JobNotFound(_) => StatusCode::NOT_FOUND,
            _ => {
                tracing::error!(%error, "dashboard request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        Self {
            status,
            message: error.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body {
            error: String,
        }
        (
            self.status,
            Json(Body {
                error: self.message,
            }),
        )
            .into_response()
    }
}
