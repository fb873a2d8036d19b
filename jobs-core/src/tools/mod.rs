//! Agent tools: the jobs an application allows, offered to an LLM agent as typed tools it
//! may call to run a job now, at a time, or on a cron schedule — each call checked
//! against the job's JSON Schema and the catalog's guard rails before anything is stored.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::client::new_job;
use crate::recurring::{JobTemplate, RecurringSource, new_recurring};
use crate::storage::{Admission, NewJob, ToolStore};
use crate::{Job, JobId, Jobs, MissedTicks};

mod own;
mod types;
mod validate;
mod when;

pub use types::{Quota, QuotaExceeded, Tool, ToolError, ToolErrorKind, ToolRecurring, ToolResult};
use validate::{Mismatch, validate};
use when::{checked_tool_name, humanize, recurring_args, split, tool_name, when_args, with_args};

/// The label every job a tool call creates carries.
pub const TOOL_CALL_LABEL: &str = "tool-call";

/// The tool that lists the caller's pending jobs and recurring schedules (read-only).
pub const LIST_TOOL: &str = "list_recurring_jobs";

/// The tool that deletes one of the caller's jobs or recurring schedules.
pub const DELETE_TOOL: &str = "delete_job";

/// The default of [`ToolCatalog::max_pending_jobs`].
pub const DEFAULT_MAX_PENDING_JOBS: u32 = 100;

/// The default of [`ToolCatalog::max_recurring_jobs`].
pub const DEFAULT_MAX_RECURRING_JOBS: u32 = 20;

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
    max_pending_jobs: u32,
    max_recurring_jobs: u32,
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
    job: JobFn,
    template: TemplateFn,
}

/// The row of a call to run job `J` at a time (`now`, `run_at`), from checked arguments.
type JobFn = fn(Value, DateTime<Utc>, DateTime<Utc>) -> Result<NewJob, ToolError>;
/// What each run of a recurring call of job `J` is made from.
type TemplateFn = fn(Value) -> Result<JobTemplate, ToolError>;

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
            .field("max_pending_jobs", &self.max_pending_jobs)
            .field("max_recurring_jobs", &self.max_recurring_jobs)
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
            max_pending_jobs: DEFAULT_MAX_PENDING_JOBS,
            max_recurring_jobs: DEFAULT_MAX_RECURRING_JOBS,
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

    /// The most jobs one caller may have waiting to run (`Enqueued` or `Scheduled`,
    /// the runs of its recurring jobs included) for a call to store another (default
    /// 100). Past it a call stores nothing and fails with
    /// [`ToolErrorKind::QuotaExceeded`].
    ///
    /// The count is read in SQL in the transaction that stores the job, with the
    /// caller's other calls held off until it commits (SQLite: its single writer;
    /// PostgreSQL: an advisory lock per caller), so concurrent calls never store past
    /// it. Runs fired by a recurring job are not checked, and may take a caller past
    /// it: they are bounded by [`max_recurring_jobs`](Self::max_recurring_jobs).
    pub fn max_pending_jobs(mut self, max: u32) -> Self {
        self.max_pending_jobs = max;
        self
    }

    /// The most recurring jobs one caller may have for a call to store another
    /// (default 20), counted and held as for
    /// [`max_pending_jobs`](Self::max_pending_jobs).
    pub fn max_recurring_jobs(mut self, max: u32) -> Self {
        self.max_recurring_jobs = max;
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
            job: job_as::<J>,
            template: template_as::<J>,
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
        tools.push(own::list_tool());
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

    /// Calls tool `name` with the model's `arguments` on behalf of `caller`: the user
    /// or conversation id the application authenticated, never one a model or a
    /// request names for itself. Each job and recurring job a call creates stores it
    /// exactly (and carries the labels `tool-call` and `caller:<id>`, for the
    /// dashboard); `list_recurring_jobs` and `delete_job` see only the rows whose
    /// stored caller equals `caller`, character for character. Arguments are checked
    /// before anything is stored: a bad call, or one past a quota, stores nothing and
    /// returns an error the model can correct its call from.
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
            LIST_TOOL => return self.list(arguments, caller).await,
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
        let now = self.jobs.now();
        let (arguments, run_at) = match kind {
            Kind::Run => {
                validate(&entry.schema, &arguments).map_err(ToolError::invalid)?;
                (arguments, now)
            }
            Kind::Schedule => {
                let (arguments, extra) = split(&entry.schema, arguments, when_args())?;
                let run_at = self.run_at(&extra)?;
                (arguments, run_at)
            }
            Kind::Recurring => {
                let (arguments, extra) = split(&entry.schema, arguments, recurring_args())?;
                let schedule = self.schedule(&extra)?;
                let mut template = (entry.template)(arguments)?;
                add_labels(&mut template.labels, caller);
                // An opaque id: who owns it is the stored caller, not a part of its id.
                let recurring_id = format!("tool:{}:{}", entry.name, JobId::new());
                let (cron, zone) = (schedule.expression(), schedule.zone().to_owned());
                let recurring = new_recurring(
                    recurring_id.clone(),
                    schedule,
                    template,
                    MissedTicks::default(),
                    false,
                    RecurringSource::Api,
                    now,
                )
                .map_err(ToolError::internal)?;
                let admitted = self
                    .jobs
                    .storage()
                    .tool_recurring_insert(&recurring, caller, self.max_recurring_jobs, now)
                    .await
                    .map_err(ToolError::internal)?;
                self.admitted(admitted, Quota::RecurringJobs)?;
                self.jobs.notify_recurring();
                return Ok(ToolResult::Recurring {
                    recurring_id,
                    cron,
                    zone,
                    next_run_at: Some(recurring.next_run_at),
                });
            }
        };
        let mut row = (entry.job)(arguments, now, run_at)?;
        add_labels(&mut row.labels, caller);
        let admitted = self
            .jobs
            .storage()
            .tool_job_insert(&row, caller, self.max_pending_jobs)
            .await
            .map_err(ToolError::internal)?;
        self.admitted(admitted, Quota::PendingJobs)?;
        self.jobs.notify_enqueued();
        Ok(ToolResult::Enqueued {
            job_id: row.id,
            run_at,
            state: row.state,
        })
    }

    fn admitted(&self, admission: Admission, quota: Quota) -> Result<(), ToolError> {
        let limit = match quota {
            Quota::PendingJobs => self.max_pending_jobs,
            Quota::RecurringJobs => self.max_recurring_jobs,
        };
        match admission {
            Admission::Stored => Ok(()),
            Admission::Refused { current } => Err(ToolError::quota_exceeded(quota, limit, current)),
        }
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

/// The labels that show a tool call's job on the dashboard (they own nothing: the
/// stored caller does), after the job's own.
fn add_labels(labels: &mut Vec<String>, caller: &str) {
    for label in [TOOL_CALL_LABEL.to_owned(), format!("caller:{caller}")] {
        if !labels.contains(&label) {
            labels.push(label);
        }
    }
}

fn job_as<J: Job>(
    arguments: Value,
    now: DateTime<Utc>,
    run_at: DateTime<Utc>,
) -> Result<NewJob, ToolError> {
    let job: J = decode(arguments)?;
    new_job(&job, None, now, run_at).map_err(ToolError::internal)
}

fn template_as<J: Job>(arguments: Value) -> Result<JobTemplate, ToolError> {
    let job: J = decode(arguments)?;
    JobTemplate::of(&job).map_err(ToolError::internal)
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
