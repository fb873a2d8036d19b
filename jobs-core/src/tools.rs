//! Agent tools: the jobs an application allows, offered to an LLM agent as typed tools it
//! may call to run a job now, at a time, or on a cron schedule — each call checked
//! against the job's JSON Schema and the catalog's guard rails before anything is stored.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::client::new_job;
use crate::storage::Storage;
use crate::{Job, JobId, JobQuery, JobState, Jobs, Schedule};

mod validate;

use validate::{Mismatch, validate};

/// The label every job a tool call creates carries.
pub const TOOL_CALL_LABEL: &str = "tool-call";

/// Arguments the schedule tools add to a job's own, so a job with a field of one of
/// these names gets no schedule tools.
const SCHEDULE_ARGS: [&str; 4] = ["at", "delay_seconds", "cron", "zone"];

/// The jobs an application offers an agent, with the limits its calls must respect.
///
/// Nothing is a tool unless allowed:
///
/// ```no_run
/// # async fn demo(jobs: jobs_core::Jobs) {
/// # #[derive(serde::Serialize, serde::Deserialize)] struct SendReminder;
/// # impl jobs_core::Job for SendReminder {
/// #     const DESCRIPTOR: jobs_core::JobDescriptor =
/// #         jobs_core::JobDescriptor::new("r", |_| Box::pin(async { Ok(()) }));
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
type RecurFn = fn(Jobs, String, Value, Schedule) -> BoxFuture<'static, Result<(), ToolError>>;

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
    pub fn allow<J: Job>(self) -> Self {
        self.add::<J>(false)
    }

    /// Offers job `J` like [`allow`](Self::allow), and on a cron schedule too.
    pub fn allow_recurring<J: Job>(self) -> Self {
        self.add::<J>(true)
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

    fn add<J: Job>(mut self, recurring: bool) -> Self {
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
        let name = tool_name(job_name);
        if let Some(existing) = self.entries.iter_mut().find(|entry| entry.name == name) {
            if existing.job_name == job_name {
                existing.recurring |= recurring;
            } else {
                tracing::error!(
                    job = job_name,
                    other = existing.job_name,
                    tool = name,
                    "not offered as a tool: another allowed job has the same tool name"
                );
            }
            return self;
        }
        let schedulable = !SCHEDULE_ARGS
            .iter()
            .any(|arg| schema["properties"].get(*arg).is_some());
        if !schedulable {
            tracing::warn!(
                job = job_name,
                "offered to run now only: a field named like a schedule argument ({})",
                SCHEDULE_ARGS.join(", ")
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
    /// `list_scheduled_jobs` and `cancel_job`.
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
                input_schema: with_args(&entry.schema, schedule_args(), &[]),
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
            name: "list_scheduled_jobs".to_owned(),
            description: "List the jobs and recurring schedules you created that have not \
                          run yet, with their ids."
                .to_owned(),
            input_schema: json!({"type": "object", "properties": {}, "additionalProperties": false}),
        });
        tools.push(Tool {
            name: "cancel_job".to_owned(),
            description: "Cancel a job or a recurring schedule you created, by the id \
                          `list_scheduled_jobs` or a schedule tool returned."
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
            "list_scheduled_jobs" => return self.list(caller).await,
            "cancel_job" => return self.cancel(arguments, caller).await,
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
                let (arguments, extra) = split(&entry.schema, arguments, schedule_args())?;
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
                (entry.recur)(self.jobs.clone(), recurring_id.clone(), arguments, schedule).await?;
                Ok(ToolResult::Recurring {
                    recurring_id,
                    cron,
                    zone,
                    next_run_at,
                })
            }
        }
    }

    /// When a schedule call runs: `at` or `delay_seconds`, within the horizon.
    fn run_at(&self, extra: &Map<String, Value>) -> Result<DateTime<Utc>, ToolError> {
        let now = self.jobs.now();
        let run_at = match (extra.get("at"), extra.get("delay_seconds")) {
            (Some(at), None) => {
                let text = at.as_str().unwrap_or_default();
                let at = DateTime::parse_from_rfc3339(text)
                    .map_err(|error| {
                        ToolError::new(
                            ToolErrorKind::InvalidArguments,
                            format!("`at` is not an RFC 3339 time ({error})"),
                        )
                        .at(
                            "/at",
                            "an RFC 3339 time with an offset, like 2026-11-28T10:00:00+01:00",
                            Some(at.to_string()),
                        )
                    })?
                    .with_timezone(&Utc);
                if at < now {
                    return Err(ToolError::new(
                        ToolErrorKind::InvalidArguments,
                        format!("`at` is in the past; it is now {}", now.to_rfc3339()),
                    )
                    .at("/at", "a time after now", Some(text.to_owned())));
                }
                at
            }
            (None, Some(delay)) => {
                let seconds = delay.as_u64().unwrap_or_default();
                let delay = chrono::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX));
                now.checked_add_signed(delay)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC)
            }
            _ => {
                return Err(ToolError::new(
                    ToolErrorKind::InvalidArguments,
                    "give exactly one of `at` and `delay_seconds`",
                )
                .at("/at", "exactly one of `at` and `delay_seconds`", None));
            }
        };
        let horizon = chrono::Duration::from_std(self.max_horizon).unwrap_or(chrono::Duration::MAX);
        if run_at.signed_duration_since(now) > horizon {
            let field = if extra.contains_key("at") {
                "/at"
            } else {
                "/delay_seconds"
            };
            return Err(ToolError::new(
                ToolErrorKind::TooFarAhead,
                format!(
                    "runs may be scheduled at most {} ahead (until {})",
                    humanize(self.max_horizon),
                    (now + horizon).to_rfc3339()
                ),
            )
            .at(
                field,
                &format!("a time at most {} from now", humanize(self.max_horizon)),
                extra.get(&field[1..]).map(Value::to_string),
            ));
        }
        Ok(run_at)
    }

    /// The cron schedule of a recurring call, its runs at least `min_interval` apart.
    fn schedule(&self, extra: &Map<String, Value>) -> Result<Schedule, ToolError> {
        let cron = extra
            .get("cron")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let zone = extra.get("zone").and_then(Value::as_str).unwrap_or("UTC");
        if let Err(error) = crate::parse_zone(zone) {
            return Err(
                ToolError::new(ToolErrorKind::InvalidSchedule, error.to_string()).at(
                    "/zone",
                    "an IANA time zone, like Europe/Brussels",
                    Some(json!(zone).to_string()),
                ),
            );
        }
        let schedule = Schedule::cron_in(cron, zone).map_err(|error| {
            ToolError::new(ToolErrorKind::InvalidSchedule, error.to_string()).at(
                "/cron",
                "a cron expression: minute hour day-of-month month day-of-week, like \"0 8 * * *\"",
                Some(json!(cron).to_string()),
            )
        })?;
        if let Some(gap) = shortest_gap(&schedule, self.jobs.now(), self.min_interval)
            && gap < self.min_interval
        {
            return Err(ToolError::new(
                ToolErrorKind::IntervalTooShort,
                format!(
                    "`{cron}` runs {} apart at times; runs must be at least {} apart",
                    humanize(gap),
                    humanize(self.min_interval)
                ),
            )
            .at(
                "/cron",
                &format!(
                    "a schedule with runs at least {} apart",
                    humanize(self.min_interval)
                ),
                Some(json!(cron).to_string()),
            ));
        }
        Ok(schedule)
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
            jobs.extend(page.items.into_iter().map(|job| ScheduledJob {
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
            .recurring_jobs()
            .await
            .map_err(ToolError::internal)?;
        jobs.extend(
            recurring
                .into_iter()
                .filter(|recurring| recurring.id.starts_with(&prefix))
                .map(|recurring| ScheduledJob {
                    id: recurring.id,
                    name: recurring.display_name,
                    state: JobState::Scheduled,
                    run_at: recurring.enabled.then_some(recurring.next_run_at),
                    cron: Some(format!("{} ({})", recurring.schedule, recurring.zone)),
                }),
        );
        Ok(ToolResult::Scheduled { jobs })
    }

    async fn cancel(&self, arguments: Value, caller: &str) -> Result<ToolResult, ToolError> {
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
                    "you have no job or recurring schedule `{id}`; list_scheduled_jobs lists yours"
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
                .delete_recurring(id)
                .await
                .map_err(ToolError::internal)?;
            return if deleted {
                Ok(ToolResult::Cancelled { id: id.to_owned() })
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
                    "job `{id}` is {} and can no longer be cancelled",
                    job.state.as_str()
                ),
            ));
        }
        self.jobs
            .delete(job_id)
            .await
            .map_err(ToolError::internal)?;
        Ok(ToolResult::Cancelled { id: id.to_owned() })
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
        let mut row = new_job(&job, JobId::new(), now, run_at).map_err(ToolError::internal)?;
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
) -> BoxFuture<'static, Result<(), ToolError>> {
    Box::pin(async move {
        let job: J = decode(arguments)?;
        jobs.schedule_recurrently(id, &schedule.expression(), job)
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

/// Checks arguments against the job's schema widened with `extra`, and splits them into
/// the job's and the schedule's.
fn split(
    schema: &Value,
    mut arguments: Value,
    extra: Value,
) -> Result<(Value, Map<String, Value>), ToolError> {
    let required: Vec<&str> = extra["required"]
        .as_array()
        .map(|required| required.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let widened = with_args(schema, extra.clone(), &required);
    validate(&widened, &arguments).map_err(ToolError::invalid)?;
    let object = arguments.as_object_mut().expect("validated as an object");
    let mut taken = Map::new();
    for name in extra["properties"]
        .as_object()
        .into_iter()
        .flat_map(Map::keys)
    {
        if let Some(value) = object.remove(name) {
            taken.insert(name.clone(), value);
        }
    }
    Ok((arguments, taken))
}

fn schedule_args() -> Value {
    json!({"properties": {
        "at": {"type": "string", "format": "date-time", "description": "When to run, RFC 3339 with an offset, like 2026-11-28T10:00:00+01:00."},
        "delay_seconds": {"type": "integer", "minimum": 1, "description": "Run after this many seconds (instead of `at`)."},
    }})
}

fn recurring_args() -> Value {
    json!({
        "properties": {
            "cron": {"type": "string", "description": "When to run: a cron expression, minute hour day-of-month month day-of-week, like \"0 8 * * *\" for every day at 8:00."},
            "zone": {"type": "string", "description": "The IANA time zone the cron is read in, like Europe/Brussels; UTC by default."},
        },
        "required": ["cron"],
    })
}

/// `schema` with the properties of `extra` added, `required` among them.
fn with_args(schema: &Value, extra: Value, required: &[&str]) -> Value {
    let mut schema = schema.clone();
    if let (Some(properties), Some(extra)) = (
        schema["properties"].as_object_mut(),
        extra["properties"].as_object(),
    ) {
        properties.extend(extra.clone());
    }
    if let Some(list) = schema["required"].as_array_mut() {
        list.extend(required.iter().map(|name| Value::from(*name)));
    }
    schema
}

/// The shortest gap between consecutive runs over the coming year (up to 1,000 runs),
/// or `None` for a schedule that runs at most once.
fn shortest_gap(schedule: &Schedule, now: DateTime<Utc>, limit: Duration) -> Option<Duration> {
    let end = now + chrono::Duration::days(366);
    let mut previous = schedule.next_after(now)?;
    let mut shortest: Option<Duration> = None;
    for _ in 0..1000 {
        let Some(next) = schedule.next_after(previous) else {
            break;
        };
        let gap = (next - previous).to_std().unwrap_or_default();
        shortest = Some(shortest.map_or(gap, |shortest| shortest.min(gap)));
        if gap < limit || next > end {
            break;
        }
        previous = next;
    }
    shortest
}

/// A tool name made from a job's registered name: its last `::` segment, with any
/// character a model API refuses replaced, short enough for `schedule_…_recurring`.
fn tool_name(job_name: &str) -> String {
    let last = job_name.rsplit("::").next().unwrap_or(job_name);
    let mut name: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    name.truncate(64 - "schedule__recurring".len());
    name
}

fn humanize(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        s if s % 86_400 == 0 && s > 0 => plural(s / 86_400, "day"),
        s if s % 3600 == 0 && s > 0 => plural(s / 3600, "hour"),
        s if s % 60 == 0 && s > 0 => plural(s / 60, "minute"),
        s => plural(s, "second"),
    }
}

fn plural(count: u64, unit: &str) -> String {
    if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    }
}

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
        /// `enqueued` or `scheduled`.
        state: JobState,
    },
    /// A recurring schedule was stored.
    Recurring {
        /// Its id, for `cancel_job`.
        recurring_id: String,
        /// The cron expression.
        cron: String,
        /// The zone it is read in.
        zone: String,
        /// Its first run.
        next_run_at: Option<DateTime<Utc>>,
    },
    /// The caller's jobs that have not run and recurring schedules.
    Scheduled {
        /// Each of them.
        jobs: Vec<ScheduledJob>,
    },
    /// A job or schedule was cancelled.
    Cancelled {
        /// Its id.
        id: String,
    },
}

/// One of the caller's pending jobs or recurring schedules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduledJob {
    /// The job id or recurring id, for `cancel_job`.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// `scheduled` or `enqueued`.
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
    /// The whole story in a sentence.
    pub message: String,
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
    /// The store failed; retrying the same call may work.
    Internal,
}

impl ToolError {
    fn new(kind: ToolErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            field: None,
            expected: None,
            got: None,
            message: message.into(),
        }
    }

    fn at(mut self, field: &str, expected: &str, got: Option<String>) -> Self {
        self.field = Some(field.to_owned());
        self.expected = Some(expected.to_owned());
        self.got = got;
        self
    }

    fn invalid(mismatch: Mismatch) -> Self {
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

    fn internal(error: crate::Error) -> Self {
        Self::new(ToolErrorKind::Internal, error.to_string())
    }
}
