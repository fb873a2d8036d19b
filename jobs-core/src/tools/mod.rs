//! Agent tools: the jobs an application allows, offered to an LLM agent as typed tools it
//! may call to run a job now, at a time, or on a cron schedule — each call checked
//! against the job's JSON Schema and the catalog's guard rails before anything is stored.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde_json::{Map, Value, json};

use crate::client::new_job;
use crate::storage::LifecycleStore;
use crate::{Job, JobId, JobQuery, JobState, Jobs, Schedule};

mod types;
mod validate;
mod when;

pub use types::{Tool, ToolError, ToolErrorKind, ToolRecurring, ToolResult};
use validate::{Mismatch, validate};
use when::{checked_tool_name, humanize, recurring_args, split, tool_name, when_args, with_args};

/// The label every job a tool call creates carries.
pub const TOOL_CALL_LABEL: &str = "tool-call";

/// The tool that lists the caller's pending jobs and recurring schedules (read-only).
pub const LIST_TOOL: &str = "list_recurring_jobs";

/// The tool that deletes one of the caller's jobs or recurring schedules.
pub const DELETE_TOOL: &str = "delete_job";

/// Arguments the schedule tools add to a job's own to say when it runs, so a job with
/// a field of one of these names gets no schedule tools.
const WHEN_ARGS: [&str; 4] = ["at", "delay_seconds", "cron", "zone"];

/// The jobs an application offers an agent, with the limits its calls must respect.
///
/// Nothing is a tool unless allowed:
///
/// ```no_run
/// # async fn demo(jobs: jobs_core::Jobs) {
/// # #[derive(serde::Serialize, serde::Deserialize)] struct SendReminder;
/// # impl jobs_core::Job for SendReminder {
/// #     type Output = ();
/// #     const DESCRIPTOR: jobs_core::JobDescriptor =
/// #         jobs_core::JobDescriptor::new("r", |_| Box::pin(async { Ok(None) }));
/// #     fn display_name(&self) -> String { String::new() }
/// # }
/// let catalog = jobs_core::ToolCatalog::new(jobs)
///     .allow::<SendReminder>()
///     .max_horizon(std::time::Duration::from_secs(30 * 86_400));
/// let tools = catalog.tools(); // hand these to the model
/// let result = catalog
///     .call_tool("run_send_reminder", serde_json::json!({}), "conversation-42")
///     .await;
/// # }
/// ```
#[derive(Clone)]
pub struct ToolCatalog {
    jobs: Jobs,
    entries: Vec<Entry>,
    max_horizon: Duration,
    min_interval: Duration,
}

#[derive(Clone)]
struct Entry {
    /// The job's tool name: `send_reminder` in `run_send_reminder`.
    name: String,
    job_name: &'static str,
    description: String,
    schema: Value,
    recurring: bool,
    schedulable: bool,
    enqueue: EnqueueFn,
    recur: RecurFn,
}

type EnqueueFn =
    fn(Jobs, Value, DateTime<Utc>, Vec<String>) -> BoxFuture<'static, Result<JobId, ToolError>>;
type RecurFn =
    fn(Jobs, String, Value, Schedule, Vec<String>) -> BoxFuture<'static, Result<(), ToolError>>;

impl fmt::Debug for ToolCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolCatalog")
            .field(
                "jobs",
                &self
                    .entries
                    .iter()
                    .map(|entry| entry.job_name)
                    .collect::<Vec<_>>(),
            )
            .field("max_horizon", &self.max_horizon)
            .field("min_interval", &self.min_interval)
            .finish()
    }
}

impl ToolCatalog {
    /// An empty catalog over `jobs`: allow jobs to fill it.
    pub fn new(jobs: Jobs) -> Self {
        Self {
            jobs,
            entries: Vec::new(),
            max_horizon: Duration::from_secs(365 * 86_400),
            min_interval: Duration::from_secs(3600),
        }
    }

    /// Offers job `J` to run now and at a time. A job opted out with
    /// `#[job(tool = false)]`, or whose data has no JSON Schema, is left out with a log
    /// line that says why.
    ///
    /// Its tools are named after the job's registered name (`send_reminder` gives
    /// `run_send_reminder` and `schedule_send_reminder`); two allowed jobs whose names end
    /// alike clash, and the second is left out with an error: name it with
    /// [`allow_as`](Self::allow_as).
    pub fn allow<J: Job>(self) -> Self {
        self.add::<J>(false, None)
    }

    /// Offers job `J` like [`allow`](Self::allow), and on a cron schedule too.
    pub fn allow_recurring<J: Job>(self) -> Self {
        self.add::<J>(true, None)
    }

    /// Offers job `J` like [`allow`](Self::allow), its tools named after `name`
    /// (`remind` gives `run_remind` and `schedule_remind`): for a clearer name, or one
    /// that does not clash with another job's.
    ///
    /// # Panics
    ///
    /// If `name` is empty, longer than 45 characters, or has characters other than
    /// ASCII letters, digits, `_` and `-` (what model APIs accept in a tool name).
    pub fn allow_as<J: Job>(self, name: &str) -> Self {
        self.add::<J>(false, Some(checked_tool_name(name)))
    }

    /// Offers job `J` like [`allow_recurring`](Self::allow_recurring), its tools named
    /// after `name` as with [`allow_as`](Self::allow_as).
    ///
    /// # Panics
    ///
    /// As [`allow_as`](Self::allow_as) does.
    pub fn allow_recurring_as<J: Job>(self, name: &str) -> Self {
        self.add::<J>(true, Some(checked_tool_name(name)))
    }

    /// How far ahead a call may schedule a run (default 365 days).
    pub fn max_horizon(mut self, horizon: Duration) -> Self {
        self.max_horizon = horizon;
        self
    }

    /// The shortest time between two runs of a recurring schedule (default 1 hour).
    pub fn min_interval(mut self, interval: Duration) -> Self {
        self.min_interval = interval;
        self
    }

    fn add<J: Job>(mut self, recurring: bool, name: Option<String>) -> Self {
        let descriptor = J::DESCRIPTOR;
        let job_name = descriptor.name();
        if !descriptor.is_tool() {
            tracing::warn!(
                job = job_name,
                "not offered as a tool: it says #[job(tool = false)]"
            );
            return self;
        }
        let schema = match descriptor.schema_setting().map(|schema| schema()) {
            Some(Ok(schema)) => schema,
            Some(Err(reason)) => {
                tracing::warn!(job = job_name, %reason, "not offered as a tool: its data has no JSON Schema");
                return self;
            }
            None => {
                tracing::warn!(
                    job = job_name,
                    "not offered as a tool: it has no JSON Schema (it is not a #[job])"
                );
                return self;
            }
        };
        let name = name.unwrap_or_else(|| tool_name(job_name));
        if let Some(existing) = self.entries.iter_mut().find(|entry| entry.name == name) {
            if existing.job_name == job_name {
                existing.recurring |= recurring;
            } else {
                tracing::error!(
                    job = job_name,
                    other = existing.job_name,
                    tool = name,
                    "not offered as a tool: another allowed job has the same tool name; \
                     name one with ToolCatalog::allow_as"
                );
            }
            return self;
        }
        let schedulable = !WHEN_ARGS
            .iter()
            .any(|arg| schema["properties"].get(*arg).is_some());
        if !schedulable {
            tracing::warn!(
                job = job_name,
                "offered to run now only: a field named like a when argument ({})",
                WHEN_ARGS.join(", ")
            );
        }
        let description = schema["description"]
            .as_str()
            .map_or_else(|| format!("The `{name}` job."), str::to_owned);
        self.entries.push(Entry {
            name,
            job_name,
            description,
            schema,
            recurring,
            schedulable,
            enqueue: enqueue_as::<J>,
            recur: recur_as::<J>,
        });
        self
    }

    /// Every tool of the catalog, in the order the jobs were allowed, then
    /// `list_recurring_jobs` and `delete_job`.
    pub fn tools(&self) -> Vec<Tool> {
        let mut tools = Vec::new();
        for entry in &self.entries {
            tools.push(Tool {
                name: format!("run_{}", entry.name),
                description: format!("Run now: {}", entry.description),
                input_schema: entry.schema.clone(),
            });
            if !entry.schedulable {
                continue;
            }
            tools.push(Tool {
                name: format!("schedule_{}", entry.name),
                description: format!(
                    "Run once later, at `at` (RFC 3339) or after `delay_seconds`, at most {} \
                     ahead: {}",
                    humanize(self.max_horizon),
                    entry.description
                ),
                input_schema: with_args(&entry.schema, when_args(), &[]),
            });
            if entry.recurring {
                tools.push(Tool {
                    name: format!("schedule_{}_recurring", entry.name),
                    description: format!(
                        "Run repeatedly on a cron schedule (runs at least {} apart): {}",
                        humanize(self.min_interval),
                        entry.description
                    ),
                    input_schema: with_args(&entry.schema, recurring_args(), &["cron"]),
                });
            }
        }
        tools.push(Tool {
            name: LIST_TOOL.to_owned(),
            description: "List the jobs and recurring schedules you created that have not \
                          run yet, with their ids."
                .to_owned(),
            input_schema: json!({"type": "object", "properties": {}, "additionalProperties": false}),
        });
        tools.push(Tool {
            name: DELETE_TOOL.to_owned(),
            description: "Delete a job or a recurring schedule you created, by the id \
                          `list_recurring_jobs` or a schedule tool returned."
                .to_owned(),
            input_schema: json!({
                "type": "object",
                "properties": {"id": {"type": "string", "description": "The job id or recurring id."}},
                "required": ["id"],
                "additionalProperties": false,
            }),
        });
        tools
    }

    /// Calls tool `name` with the model's `arguments` on behalf of `caller` (a user or
    /// conversation id, recorded as the label `caller:<id>`). Arguments are checked
    /// before anything is stored: a bad call stores nothing and returns an error the
    /// model can correct its call from.
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: Value,
        caller: &str,
    ) -> Result<ToolResult, ToolError> {
        let arguments = match arguments {
            // Some models send `null` for a tool without arguments.
            Value::Null => Value::Object(Map::new()),
            Value::Object(arguments) => Value::Object(arguments),
            other => {
                return Err(ToolError::invalid(Mismatch {
                    field: String::new(),
                    expected: "an object of arguments".to_owned(),
                    got: Some(other.to_string()),
                    unknown: false,
                }));
            }
        };
        match name {
            LIST_TOOL => return self.list(caller).await,
            DELETE_TOOL => return self.delete(arguments, caller).await,
            _ => {}
        }
        let (kind, job) = name
            .strip_prefix("run_")
            .map(|job| (Kind::Run, job))
            .or_else(|| {
                let job = name.strip_prefix("schedule_")?;
                Some(match job.strip_suffix("_recurring") {
                    Some(job) => (Kind::Recurring, job),
                    None => (Kind::Schedule, job),
                })
            })
            .ok_or_else(|| self.unknown(name))?;
        let entry = self
            .entries
            .iter()
            .find(|entry| {
                entry.name == job
                    && match kind {
                        Kind::Run => true,
                        Kind::Schedule => entry.schedulable,
                        Kind::Recurring => entry.schedulable && entry.recurring,
                    }
            })
            .ok_or_else(|| self.unknown(name))?;
        let labels = vec![TOOL_CALL_LABEL.to_owned(), format!("caller:{caller}")];
        match kind {
            Kind::Run => {
                validate(&entry.schema, &arguments).map_err(ToolError::invalid)?;
                let now = self.jobs.now();
                let id = (entry.enqueue)(self.jobs.clone(), arguments, now, labels).await?;
                Ok(ToolResult::Enqueued {
                    job_id: id,
                    run_at: now,
                    state: JobState::Enqueued,
                })
            }
            Kind::Schedule => {
                let (arguments, extra) = split(&entry.schema, arguments, when_args())?;
                let run_at = self.run_at(&extra)?;
                let id = (entry.enqueue)(self.jobs.clone(), arguments, run_at, labels).await?;
                Ok(ToolResult::Enqueued {
                    job_id: id,
                    run_at,
                    state: JobState::Scheduled,
                })
            }
            Kind::Recurring => {
                let (arguments, extra) = split(&entry.schema, arguments, recurring_args())?;
                let schedule = self.schedule(&extra)?;
                let recurring_id = format!("tool:{caller}:{}:{}", entry.name, JobId::new());
                let next_run_at = schedule.next_after(self.jobs.now());
                let (cron, zone) = (schedule.expression(), schedule.zone().to_owned());
                (entry.recur)(
                    self.jobs.clone(),
                    recurring_id.clone(),
                    arguments,
                    schedule,
                    labels,
                )
                .await?;
                Ok(ToolResult::Recurring {
                    recurring_id,
                    cron,
                    zone,
                    next_run_at,
                })
            }
        }
    }

    async fn list(&self, caller: &str) -> Result<ToolResult, ToolError> {
        let label = format!("caller:{caller}");
        let mut jobs = Vec::new();
        for state in [JobState::Scheduled, JobState::Enqueued] {
            let query = JobQuery {
                label: Some(label.clone()),
                ..JobQuery::state(state).limit(100)
            };
            let page = self.jobs.list(query).await.map_err(ToolError::internal)?;
            jobs.extend(page.items.into_iter().map(|job| ToolRecurring {
                id: job.id.to_string(),
                name: job.display_name,
                state: job.state,
                run_at: Some(job.run_at),
                cron: None,
            }));
        }
        let prefix = format!("tool:{caller}:");
        let recurring = self
            .jobs
            .recurring()
            .list()
            .await
            .map_err(ToolError::internal)?;
        jobs.extend(
            recurring
                .into_iter()
                .filter(|recurring| recurring.id.starts_with(&prefix))
                .map(|recurring| ToolRecurring {
                    id: recurring.id,
                    name: recurring.display_name,
                    state: JobState::Scheduled,
                    run_at: recurring.enabled.then_some(recurring.next_run_at),
                    cron: Some(format!("{} ({})", recurring.schedule, recurring.zone)),
                }),
        );
        Ok(ToolResult::Scheduled { jobs })
    }

    async fn delete(&self, arguments: Value, caller: &str) -> Result<ToolResult, ToolError> {
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
        if id.starts_with(&format!("tool:{caller}:")) {
            let deleted = self
                .jobs
                .recurring()
                .delete(id)
                .await
                .map_err(ToolError::internal)?;
            return if deleted {
                Ok(ToolResult::Deleted { id: id.to_owned() })
            } else {
                Err(not_found())
            };
        }
        let job_id: JobId = id.parse().map_err(|_| not_found())?;
        let job = match self.jobs.get(job_id).await {
            Ok(job) => job,
            Err(crate::Error::JobNotFound(_)) => return Err(not_found()),
            Err(error) => return Err(ToolError::internal(error)),
        };
        if !job.labels.contains(&format!("caller:{caller}")) {
            return Err(not_found());
        }
        if !matches!(job.state, JobState::Scheduled | JobState::Enqueued) {
            return Err(ToolError::new(
                ToolErrorKind::NotFound,
                format!(
                    "job `{id}` is {} and can no longer be deleted",
                    job.state.as_str()
                ),
            ));
        }
        self.jobs
            .delete(job_id)
            .await
            .map_err(ToolError::internal)?;
        Ok(ToolResult::Deleted { id: id.to_owned() })
    }

    fn unknown(&self, name: &str) -> ToolError {
        let names: Vec<String> = self.tools().into_iter().map(|tool| tool.name).collect();
        ToolError::new(
            ToolErrorKind::UnknownTool,
            format!(
                "there is no tool `{name}`; the tools are {}",
                names.join(", ")
            ),
        )
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Run,
    Schedule,
    Recurring,
}

fn enqueue_as<J: Job>(
    jobs: Jobs,
    arguments: Value,
    run_at: DateTime<Utc>,
    labels: Vec<String>,
) -> BoxFuture<'static, Result<JobId, ToolError>> {
    Box::pin(async move {
        let job: J = decode(arguments)?;
        let now = jobs.now();
        let mut row = new_job(&job, None, now, run_at).map_err(ToolError::internal)?;
        for label in labels {
            if !row.labels.contains(&label) {
                row.labels.push(label);
            }
        }
        let id = row.id;
        jobs.storage()
            .jobs_insert(&[row])
            .await
            .map_err(ToolError::internal)?;
        jobs.notify_enqueued();
        Ok(id)
    })
}

fn recur_as<J: Job>(
    jobs: Jobs,
    id: String,
    arguments: Value,
    schedule: Schedule,
    labels: Vec<String>,
) -> BoxFuture<'static, Result<(), ToolError>> {
    Box::pin(async move {
        let job: J = decode(arguments)?;
        labels
            .into_iter()
            .fold(
                jobs.recurring().cron(id, &schedule.expression(), job),
                |recurring, label| recurring.label(label),
            )
            .zone(schedule.zone())
            .await
            .map_err(ToolError::internal)
    })
}

/// The job from checked arguments; a type whose own `Deserialize` refuses what its
/// schema allows still gets a structured error.
fn decode<J: Job>(arguments: Value) -> Result<J, ToolError> {
    serde_json::from_value(arguments).map_err(|error| {
        ToolError::new(
            ToolErrorKind::InvalidArguments,
            format!("the arguments do not decode: {error}"),
        )
    })
}
