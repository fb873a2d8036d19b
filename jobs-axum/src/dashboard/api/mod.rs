//! The JSON API, shaped like River UI's and JobRunr's: jobs, recurring jobs, queues,
//! stats and servers, and the actions on them; events sent to waiting jobs. Every error is
//! `{"code": "…", "error": "…"}` with a 4xx or 5xx status.

mod batches;
mod job_events;
mod jobs;
mod queues;
mod recurring;
mod stats;

use axum::Router;
use axum::extract::FromRef;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jobs_core::{JobId, JobQuery, Jobs};
use serde::{Deserialize, Serialize};

pub(super) use batches::{batch_detail, parse_batch};
pub(super) use jobs::{ListParams, job_detail};
pub(super) use queues::read_queues;
pub(super) use recurring::read_recurring;
pub(super) use stats::{Stats, read_servers, read_stats, read_throughput};

pub(super) fn routes<S>() -> Router<S>
where
    Jobs: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .merge(batches::routes())
        .merge(jobs::routes())
        .merge(job_events::routes())
        .merge(queues::routes())
        .merge(recurring::routes())
        .merge(stats::routes())
}

/// The filters shared by listing and bulk actions: `state`, `name`, `search`, `label`, each
/// optional; empty strings count as absent, so an HTML form can send every field.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Filters {
    state: Option<String>,
    name: Option<String>,
    search: Option<String>,
    label: Option<String>,
}

impl Filters {
    fn query(self) -> Result<JobQuery, ApiError> {
        let mut query = JobQuery::default();
        for (parameter, value) in [
            ("name", &self.name),
            ("search", &self.search),
            ("label", &self.label),
        ] {
            if let Some(value) = value {
                without_nul(parameter, value)?;
            }
        }
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
        if let Some(search) = non_empty(self.search) {
            query = query.search(search);
        }
        if let Some(label) = non_empty(self.label) {
            query = query.label(label);
        }
        Ok(query)
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|value| !value.trim().is_empty())
}

/// Refuses text with a NUL character, which no stored name, label or id holds
/// (PostgreSQL's text cannot), so the store is never asked.
pub(super) fn without_nul(parameter: &str, value: &str) -> Result<(), ApiError> {
    if value.contains('\0') {
        return Err(ApiError::bad_request(format!(
            "{parameter}: contains a NUL character"
        )));
    }
    Ok(())
}

pub(super) fn parse_id(id: &str) -> Result<JobId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a job id (a UUID)")))
}

/// An API failure, answered as `{"code": "…", "error": "…"}`: a stable code to branch
/// on, and a message for people. A failure of the server's own (the store, mostly) shows
/// no detail: the detail goes to the log under a correlation id, which the answer
/// carries as `"id"` and names in its message.
#[derive(Debug)]
pub(in crate::dashboard) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    id: Option<String>,
}

impl ApiError {
    /// An error with the usual code of its status.
    pub(in crate::dashboard) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        let code = match status {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::REQUEST_TIMEOUT => "timeout",
            StatusCode::CONFLICT => "conflict",
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            status if status.is_server_error() => "internal",
            _ => "error",
        };
        Self::coded(status, code, message)
    }

    pub(in crate::dashboard) fn coded(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            id: None,
        }
    }

    /// A failure whose detail is for the log only.
    fn internal(error: &jobs_core::Error) -> Self {
        let id = uuid::Uuid::now_v7().to_string();
        tracing::error!(%error, error_id = %id, "dashboard request failed");
        Self {
            id: Some(id.clone()),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the job store failed; the server's log says why, under error id {id}"),
            )
        }
    }

    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn prefixed(self, parameter: &str) -> Self {
        Self {
            message: format!("{parameter}: {}", self.message),
            ..self
        }
    }

    pub(super) fn message(&self) -> &str {
        &self.message
    }
}

impl From<jobs_core::Error> for ApiError {
    fn from(error: jobs_core::Error) -> Self {
        match error {
            jobs_core::Error::JobNotFound(_)
            | jobs_core::Error::RecurringNotFound(_)
            | jobs_core::Error::BatchNotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, error.to_string())
            }
            // A requeue that would run the job twice at once: the message says when to
            // try again.
            jobs_core::Error::StillRunning { .. } => {
                Self::coded(StatusCode::CONFLICT, "still_running", error.to_string())
            }
            jobs_core::Error::Schedule(_) => Self::coded(
                StatusCode::BAD_REQUEST,
                "invalid_schedule",
                error.to_string(),
            ),
            _ => Self::internal(&error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body {
            code: &'static str,
            error: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            id: Option<String>,
        }
        (
            self.status,
            axum::Json(Body {
                code: self.code,
                error: self.message,
                id: self.id,
            }),
        )
            .into_response()
    }
}

/// The answers of the HTTP layers in front of the handlers (a body over the limit, an
/// answer too slow) in the API's error shape, `{"error": "…"}`, like every other error.
///
/// A body refused unread is still on the connection, so that answer also says
/// `Connection: close`: a client must not send its next request on it.
pub(in crate::dashboard) async fn plumbing_error_as_json(response: Response) -> Response {
    let status = response.status();
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large",
        StatusCode::REQUEST_TIMEOUT => "the answer took too long",
        _ => return response,
    };
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    let mut response = if is_json {
        response
    } else {
        ApiError::new(status, message).into_response()
    };
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// The refusals of axum's own extractors and routing (a query parameter given twice, a
/// path that is not UTF-8, a method the route does not have) in the API's error shape,
/// their text as the message. The body limit's 413 and the timeout's 408 are left to
/// [`plumbing_error_as_json`], outside.
pub(in crate::dashboard) async fn rejection_as_json(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !status.is_client_error()
        || is_json
        || matches!(
            status,
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
        )
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let message = match text.trim() {
        "" => status.canonical_reason().unwrap_or("refused").to_owned(),
        text => text.to_owned(),
    };
    let mut answer = ApiError::new(status, message).into_response();
    if let Some(allow) = parts.headers.get(axum::http::header::ALLOW) {
        answer
            .headers_mut()
            .insert(axum::http::header::ALLOW, allow.clone());
    }
    answer
}

/// `{"items": […]}`: every list the API answers that is not paged.
#[derive(Debug, Serialize)]
pub(super) struct Items<T> {
    pub(super) items: Vec<T>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requeue_of_a_job_still_stopping_is_a_conflict_that_says_when_to_retry() {
        let id = jobs_core::JobId::new();
        let error = ApiError::from(jobs_core::Error::StillRunning {
            id,
            server: "worker-1".to_owned(),
        });
        assert_eq!(error.status, StatusCode::CONFLICT);
        assert_eq!(
            error.message(),
            format!(
                "job {id} is still stopping on server worker-1; requeue it when it has stopped"
            )
        );
    }
}
