//! The caller's own jobs and recurring jobs: `list_recurring_jobs`, a page at a time,
//! and `delete_job`. Both read only the rows whose stored caller equals the caller.

use serde_json::{Value, json};

use super::validate::validate;
use super::{LIST_TOOL, Tool, ToolCatalog, ToolError, ToolErrorKind, ToolRecurring, ToolResult};
use crate::storage::ToolStore;
use crate::{JobId, JobState};

/// A page's size when the call does not say.
const DEFAULT_PAGE: u32 = 50;
/// The largest page a call may ask for.
const MAX_PAGE: u32 = 100;

/// Where a page starts: jobs first (newest id first), then recurring jobs (by id).
enum Cursor {
    Start,
    /// After this job.
    Jobs(JobId),
    /// After this recurring job, or from the first one.
    Recurring(Option<String>),
}

impl Cursor {
    fn parse(text: &str) -> Option<Self> {
        match text.split_once(':')? {
            ("jobs", id) => id.parse().ok().map(Cursor::Jobs),
            ("recurring", "") => Some(Cursor::Recurring(None)),
            ("recurring", id) => Some(Cursor::Recurring(Some(id.to_owned()))),
            _ => None,
        }
    }
}

fn list_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "cursor": {
                "type": "string",
                "description": "The next_cursor of the previous page; leave it out for the first.",
            },
            "limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_PAGE,
                "description": "The most items on this page (default 50).",
            },
        },
        "additionalProperties": false,
    })
}

pub(super) fn list_tool() -> Tool {
    Tool {
        name: LIST_TOOL.to_owned(),
        description: "List the jobs and recurring schedules you created that have not run \
                      yet, with their ids, a page at a time: pass next_cursor back as cursor \
                      for the next page."
            .to_owned(),
        input_schema: list_schema(),
    }
}

impl ToolCatalog {
    pub(super) async fn list(
        &self,
        arguments: Value,
        caller: &str,
    ) -> Result<ToolResult, ToolError> {
        validate(&list_schema(), &arguments).map_err(ToolError::invalid)?;
        let limit = arguments["limit"].as_u64().map_or(DEFAULT_PAGE, |limit| {
            limit.clamp(1, u64::from(MAX_PAGE)) as u32
        });
        let cursor = match arguments["cursor"].as_str() {
            None => Cursor::Start,
            Some(text) => Cursor::parse(text).ok_or_else(|| {
                ToolError::new(
                    ToolErrorKind::InvalidArguments,
                    "`/cursor` is not a cursor this tool returned: pass next_cursor as it \
                     came, or leave it out for the first page",
                )
                .at(
                    "/cursor",
                    "the next_cursor of the previous page",
                    Some(json!(text).to_string()),
                )
            })?,
        };
        let storage = self.jobs.storage();
        let mut items = Vec::new();
        let after_recurring = match cursor {
            Cursor::Start | Cursor::Jobs(_) => {
                let after = match cursor {
                    Cursor::Jobs(after) => Some(after),
                    _ => None,
                };
                // One more than the page holds says whether another page follows.
                let jobs = storage
                    .tool_jobs_list(caller, after, limit + 1)
                    .await
                    .map_err(ToolError::internal)?;
                let more = jobs.len() > limit as usize;
                let mut last = None;
                for job in jobs.into_iter().take(limit as usize) {
                    last = Some(job.id);
                    items.push(ToolRecurring {
                        id: job.id.to_string(),
                        name: job.display_name,
                        state: job.state,
                        run_at: Some(job.run_at),
                        cron: None,
                    });
                }
                if let (true, Some(last)) = (more, last) {
                    return Ok(page(items, Some(format!("jobs:{last}"))));
                }
                None
            }
            Cursor::Recurring(after) => after,
        };
        let room = limit - items.len() as u32;
        let recurring = storage
            .tool_recurring_list(caller, after_recurring.as_deref(), room + 1)
            .await
            .map_err(ToolError::internal)?;
        let more = recurring.len() > room as usize;
        let mut last = after_recurring;
        for recurring in recurring.into_iter().take(room as usize) {
            last = Some(recurring.id.clone());
            items.push(ToolRecurring {
                id: recurring.id,
                name: recurring.display_name,
                state: JobState::Scheduled,
                run_at: recurring.enabled.then_some(recurring.next_run_at),
                cron: Some(format!("{} ({})", recurring.schedule, recurring.zone)),
            });
        }
        let next = more.then(|| format!("recurring:{}", last.as_deref().unwrap_or("")));
        Ok(page(items, next))
    }

    pub(super) async fn delete(
        &self,
        arguments: Value,
        caller: &str,
    ) -> Result<ToolResult, ToolError> {
        let schema = json!({
            "type": "object",
            "properties": {"id": {"type": "string"}},
            "required": ["id"],
            "additionalProperties": false,
        });
        validate(&schema, &arguments).map_err(ToolError::invalid)?;
        let id = arguments["id"].as_str().unwrap_or_default();
        let not_found = || {
            ToolError::new(
                ToolErrorKind::NotFound,
                format!(
                    "you have no job or recurring schedule `{id}`; list_recurring_jobs lists yours"
                ),
            )
            .at(
                "/id",
                "the id of a job or recurring schedule you created",
                Some(json!(id).to_string()),
            )
        };
        let storage = self.jobs.storage();
        if storage
            .tool_recurring_delete(caller, id)
            .await
            .map_err(ToolError::internal)?
        {
            self.jobs.notify_recurring();
            return Ok(ToolResult::Deleted { id: id.to_owned() });
        }
        let job_id: JobId = id.parse().map_err(|_| not_found())?;
        let state = storage
            .tool_job_state(caller, job_id)
            .await
            .map_err(ToolError::internal)?
            .ok_or_else(not_found)?;
        if !matches!(state, JobState::Scheduled | JobState::Enqueued) {
            return Err(ToolError::new(
                ToolErrorKind::NotFound,
                format!(
                    "job `{id}` is {} and can no longer be deleted",
                    state.as_str()
                ),
            ));
        }
        // The caller owns the job for good (its caller is never changed); between the
        // check and the delete it may have started, and is then stopped as a delete
        // from the dashboard stops it.
        self.jobs
            .delete(job_id)
            .await
            .map_err(ToolError::internal)?;
        Ok(ToolResult::Deleted { id: id.to_owned() })
    }
}

fn page(jobs: Vec<ToolRecurring>, next_cursor: Option<String>) -> ToolResult {
    ToolResult::Scheduled { jobs, next_cursor }
}
