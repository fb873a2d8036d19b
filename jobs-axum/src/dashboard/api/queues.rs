//! Queues: each one's unfinished jobs by state, its pause, the limits and rates the
//! servers declare and the jobs its rate holds back; pause and resume a queue or a job
//! name for every server.

use axum::extract::{FromRef, FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use jobs_core::{Jobs, PauseKind, QueueInfo, QueueLimit};
use serde::Serialize;

use super::{ApiError, without_nul};
use crate::Caller;
use crate::dashboard::auth::Operator;

pub(super) fn routes<S>() -> Router<S>
where
    Jobs: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/queues", get(list))
        .route("/api/queues/{queue}/pause", post(pause_queue))
        .route("/api/queues/{queue}/resume", post(resume_queue))
        .route("/api/job-names/{name}/pause", post(pause_job))
        .route("/api/job-names/{name}/resume", post(resume_job))
}

/// Every queue known, and the paused job names.
#[derive(Debug, Serialize)]
pub(in super::super) struct Queues {
    items: Vec<Queue>,
    /// Job names paused on their own, whatever their queue.
    paused_job_names: Vec<PausedName>,
}

/// One queue: its counts, whether it is paused (by whom, when), its limits.
#[derive(Debug, Serialize)]
struct Queue {
    queue: String,
    /// Due and not claimed: `Enqueued`, or `Scheduled` with their time come.
    waiting: u64,
    /// `Scheduled` for later.
    scheduled: u64,
    /// `Processing`: running, or claimed ahead.
    running: u64,
    /// `Failed` for good.
    failed: u64,
    /// Waiting because the queue's rate is used up (the strictest rate a server
    /// declares): its `waiting` jobs while the window is full, else 0.
    rate_limited: u64,
    paused: bool,
    paused_by: Option<String>,
    paused_at: Option<DateTime<Utc>>,
    /// The limits and rates each server that declares one holds it to.
    limits: Vec<QueueLimit>,
}

impl From<QueueInfo> for Queue {
    fn from(info: QueueInfo) -> Self {
        let (paused_by, paused_at) = info
            .paused
            .map_or((None, None), |pause| (Some(pause.by), Some(pause.at)));
        Self {
            queue: info.queue,
            waiting: info.waiting,
            scheduled: info.scheduled,
            running: info.running,
            failed: info.failed,
            rate_limited: info.rate_limited,
            paused: paused_by.is_some(),
            paused_by,
            paused_at,
            limits: info.limits,
        }
    }
}

/// A job name and its pause.
#[derive(Debug, Serialize)]
struct PausedName {
    name: String,
    paused: bool,
    paused_by: Option<String>,
    paused_at: Option<DateTime<Utc>>,
}

pub(in super::super) async fn read_queues(jobs: &Jobs) -> Result<Queues, ApiError> {
    let items = jobs.queues().await?.into_iter().map(Queue::from).collect();
    let paused_job_names = jobs
        .paused()
        .await?
        .into_iter()
        .filter(|paused| paused.kind == PauseKind::Job)
        .map(|paused| PausedName {
            name: paused.name,
            paused: true,
            paused_by: Some(paused.by),
            paused_at: Some(paused.at),
        })
        .collect();
    Ok(Queues {
        items,
        paused_job_names,
    })
}

async fn list(State(jobs): State<Jobs>) -> Result<Json<Queues>, ApiError> {
    Ok(Json(read_queues(&jobs).await?))
}

/// Who a change is recorded as made by: the username of the dashboard's credentials,
/// else the [`Caller`] the app's own authentication put into the request (a dashboard
/// nested behind it), else `dashboard`.
struct Actor(String);

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let extensions = &parts.extensions;
        let operator = extensions
            .get::<Operator>()
            .map(|operator| operator.0.clone());
        let caller = || {
            extensions
                .get::<Caller>()
                .map(|caller| caller.id().to_owned())
        };
        Ok(Self(
            operator
                .or_else(caller)
                .filter(|name| !name.trim().is_empty())
                .unwrap_or_else(|| "dashboard".to_owned()),
        ))
    }
}

/// A queue name from the path, refused with its fault named.
fn queue_name(queue: &str) -> Result<(), ApiError> {
    jobs_grammar::check_queue_name(queue).map_err(|error| {
        ApiError::coded(
            StatusCode::BAD_REQUEST,
            "invalid_queue",
            format!("queue: {error}"),
        )
    })
}

/// A job name from the path: not blank, no NUL.
fn job_name(name: &str) -> Result<(), ApiError> {
    without_nul("name", name)?;
    if name.trim().is_empty() {
        return Err(ApiError::bad_request(
            "name: empty; give the registered job name",
        ));
    }
    Ok(())
}

/// The queue as it is after a change, so the page shows it at once.
async fn queue_now(jobs: &Jobs, queue: &str) -> Result<Json<Queue>, ApiError> {
    let info = jobs
        .queues()
        .await?
        .into_iter()
        .find(|info| info.queue == queue);
    Ok(Json(info.map(Queue::from).unwrap_or_else(|| Queue {
        queue: queue.to_owned(),
        waiting: 0,
        scheduled: 0,
        running: 0,
        failed: 0,
        rate_limited: 0,
        paused: false,
        paused_by: None,
        paused_at: None,
        limits: Vec::new(),
    })))
}

async fn pause_queue(
    State(jobs): State<Jobs>,
    Actor(by): Actor,
    Path(queue): Path<String>,
) -> Result<Json<Queue>, ApiError> {
    queue_name(&queue)?;
    jobs.pause_queue(&queue, &by).await?;
    queue_now(&jobs, &queue).await
}

/// Resumes it if it is paused; a queue that is not answers as it is.
async fn resume_queue(
    State(jobs): State<Jobs>,
    Path(queue): Path<String>,
) -> Result<Json<Queue>, ApiError> {
    queue_name(&queue)?;
    jobs.resume_queue(&queue).await?;
    queue_now(&jobs, &queue).await
}

/// The job name as it is after a change.
async fn job_name_now(jobs: &Jobs, name: &str) -> Result<Json<PausedName>, ApiError> {
    let pause = jobs
        .paused()
        .await?
        .into_iter()
        .find(|paused| paused.kind == PauseKind::Job && paused.name == name);
    Ok(Json(PausedName {
        name: name.to_owned(),
        paused: pause.is_some(),
        paused_by: pause.as_ref().map(|pause| pause.by.clone()),
        paused_at: pause.map(|pause| pause.at),
    }))
}

async fn pause_job(
    State(jobs): State<Jobs>,
    Actor(by): Actor,
    Path(name): Path<String>,
) -> Result<Json<PausedName>, ApiError> {
    job_name(&name)?;
    jobs.pause_job(&name, &by).await?;
    job_name_now(&jobs, &name).await
}

async fn resume_job(
    State(jobs): State<Jobs>,
    Path(name): Path<String>,
) -> Result<Json<PausedName>, ApiError> {
    job_name(&name)?;
    jobs.resume_job(&name).await?;
    job_name_now(&jobs, &name).await
}
