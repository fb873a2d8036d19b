//! What the catalog hands a model: its tools, the result of a call, and an error a
//! model can correct its call from.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::validate::Mismatch;
use crate::{JobId, JobState};

/// One tool as a model API takes it: a name, what it does, and its arguments' JSON Schema.
///
/// Serialized as `{"name", "description", "input_schema"}` (Anthropic's shape and MCP's
/// `inputSchema` aside); [`openai`](Self::openai) gives the OpenAI shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tool {
    /// Matches `^[a-zA-Z0-9_-]{1,64}$`.
    pub name: String,
    /// What calling it does, for the model.
    pub description: String,
    /// The JSON Schema of its arguments (an object).
    pub input_schema: Value,
}

impl Tool {
    /// `{"type": "function", "function": {"name", "description", "parameters"}}`.
    pub fn openai(&self) -> Value {
        json!({
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.input_schema,
            },
        })
    }
}

/// What a successful tool call did, as the model is told (serialized with a `result` tag).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ToolResult {
    /// A job was stored, to run now or at `run_at`.
    Enqueued {
        /// The job's id.
        job_id: JobId,
        /// When it runs.
        run_at: DateTime<Utc>,
        /// `Enqueued` (runs now) or `Scheduled`.
        state: JobState,
    },
    /// A recurring schedule was stored.
    Recurring {
        /// Its id, for `delete_job`.
        recurring_id: String,
        /// The cron expression.
        cron: String,
        /// The zone it is read in.
        zone: String,
        /// Its first run.
        next_run_at: Option<DateTime<Utc>>,
    },
    /// A page of the caller's jobs that have not run, then of its recurring jobs.
    Scheduled {
        /// Each of them.
        jobs: Vec<ToolRecurring>,
        /// Pass it as `cursor` for the next page; `None` on the last one.
        next_cursor: Option<String>,
    },
    /// A job or schedule was deleted.
    Deleted {
        /// Its id.
        id: String,
    },
}

/// One of the caller's pending jobs or recurring schedules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolRecurring {
    /// The job id or recurring id, for `delete_job`.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// `Scheduled` or `Enqueued`.
    pub state: JobState,
    /// When it runs next.
    pub run_at: Option<DateTime<Utc>>,
    /// The schedule of a recurring one, with its zone.
    pub cron: Option<String>,
}

/// Why a tool call stored nothing, in words a model can correct its call from.
///
/// Serialized as `{"error": "invalid_arguments", "field": "/user_id",
/// "expected": "an integer", "got": "\"seven\"", "message": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct ToolError {
    /// What kind of mistake.
    #[serde(rename = "error")]
    pub kind: ToolErrorKind,
    /// A JSON Pointer to the argument at fault, if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What the argument should have been.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What it was, as JSON; absent for a missing argument.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub got: Option<String>,
    /// For [`ToolErrorKind::QuotaExceeded`]: which quota, its limit and the caller's
    /// count (serialized as the keys `quota`, `limit` and `current`). Boxed, so that
    /// every other error stays small.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Box<QuotaExceeded>>,
    /// The whole story in a sentence.
    pub message: String,
}

/// Which per-caller quota a call would have passed, and by how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QuotaExceeded {
    /// The quota.
    pub quota: Quota,
    /// The most the catalog allows one caller.
    pub limit: u64,
    /// How many the caller has now.
    pub current: u64,
}

/// The per-caller quotas of a [`ToolCatalog`](crate::ToolCatalog).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Quota {
    /// Jobs not yet run (`Enqueued` or `Scheduled`), the runs of recurring jobs included
    /// ([`ToolCatalog::max_pending_jobs`](crate::ToolCatalog::max_pending_jobs)).
    PendingJobs,
    /// Recurring jobs ([`ToolCatalog::max_recurring_jobs`](crate::ToolCatalog::max_recurring_jobs)).
    RecurringJobs,
}

/// The kinds of [`ToolError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ToolErrorKind {
    /// The arguments do not match the tool's schema.
    InvalidArguments,
    /// No such tool: the job is not allowed, or the name is misspelt.
    UnknownTool,
    /// The cron expression or the zone does not parse.
    InvalidSchedule,
    /// The run would be further ahead than the catalog allows.
    TooFarAhead,
    /// The recurring schedule runs more often than the catalog allows.
    IntervalTooShort,
    /// No job or schedule of the caller has this id.
    NotFound,
    /// The caller has as many pending jobs or recurring jobs as the catalog allows one
    /// caller; nothing was stored ([`ToolError::quota`] says which quota).
    QuotaExceeded,
    /// The store failed; retrying the same call may work.
    Internal,
}

impl ToolError {
    pub(super) fn new(kind: ToolErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            field: None,
            expected: None,
            got: None,
            quota: None,
            message: message.into(),
        }
    }

    pub(super) fn quota_exceeded(quota: Quota, limit: u32, current: u64) -> Self {
        let (what, or_wait) = match quota {
            Quota::PendingJobs => ("jobs that have not run yet", " or wait for one to run"),
            Quota::RecurringJobs => ("recurring jobs", ""),
        };
        let mut error = Self::new(
            ToolErrorKind::QuotaExceeded,
            format!(
                "nothing was stored: you have {current} {what}, the most allowed is {limit}; \
                 delete one with delete_job (list_recurring_jobs lists yours){or_wait}"
            ),
        );
        error.quota = Some(Box::new(QuotaExceeded {
            quota,
            limit: u64::from(limit),
            current,
        }));
        error
    }

    pub(super) fn at(mut self, field: &str, expected: &str, got: Option<String>) -> Self {
        self.field = Some(field.to_owned());
        self.expected = Some(expected.to_owned());
        self.got = got;
        self
    }

    pub(super) fn invalid(mismatch: Mismatch) -> Self {
        let Mismatch {
            field,
            expected,
            got,
            unknown,
        } = mismatch;
        let place = if field.is_empty() {
            "the arguments".to_owned()
        } else {
            format!("`{field}`")
        };
        let message = match &got {
            Some(_) if unknown => {
                format!("{place} is not an argument of this tool: use {expected}")
            }
            Some(got) => format!("{place} should be {expected}, not {got}"),
            None => format!("{place} is missing: it should be {expected}"),
        };
        Self::new(ToolErrorKind::InvalidArguments, message).at(&field, &expected, got)
    }

    pub(super) fn internal(error: crate::Error) -> Self {
        Self::new(ToolErrorKind::Internal, error.to_string())
    }
}
