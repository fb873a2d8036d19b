//! The when arguments the `schedule_…` tools add to a job's own, and the checks on
//! them: when a one-off run may be, how often a recurring one may run.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::validate::validate;
use super::{ToolCatalog, ToolError, ToolErrorKind};
use crate::Schedule;

impl ToolCatalog {
    /// When a schedule call runs: `at` or `delay_seconds`, within the horizon.
    pub(super) fn run_at(&self, extra: &Map<String, Value>) -> Result<DateTime<Utc>, ToolError> {
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
                // Any delay past what a time can hold is past the horizon, not a panic.
                let seconds = delay.as_u64().unwrap_or_default();
                i64::try_from(seconds)
                    .ok()
                    .and_then(chrono::Duration::try_seconds)
                    .and_then(|delay| now.checked_add_signed(delay))
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
    pub(super) fn schedule(&self, extra: &Map<String, Value>) -> Result<Schedule, ToolError> {
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
}

/// Checks arguments against the job's schema widened with `extra`, and splits them into
/// the job's and the when arguments.
pub(super) fn split(
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

pub(super) fn when_args() -> Value {
    json!({"properties": {
        "at": {"type": "string", "format": "date-time", "description": "When to run, RFC 3339 with an offset, like 2026-11-28T10:00:00+01:00."},
        "delay_seconds": {"type": "integer", "minimum": 1, "description": "Run after this many seconds (instead of `at`)."},
    }})
}

pub(super) fn recurring_args() -> Value {
    json!({
        "properties": {
            "cron": {"type": "string", "description": "When to run: a cron expression, minute hour day-of-month month day-of-week, like \"0 8 * * *\" for every day at 8:00."},
            "zone": {"type": "string", "description": "The IANA time zone the cron is read in, like Europe/Brussels; UTC by default."},
        },
        "required": ["cron"],
    })
}

/// `schema` with the properties of `extra` added, `required` among them.
pub(super) fn with_args(schema: &Value, extra: Value, required: &[&str]) -> Value {
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

/// The longest job part of a tool name, so `schedule_…_recurring` fits in 64 characters.
const MAX_TOOL_NAME: usize = 64 - "schedule__recurring".len();

fn tool_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// A tool name made from a job's registered name: its last `::` segment, with any
/// character a model API refuses replaced, short enough for `schedule_…_recurring`.
pub(super) fn tool_name(job_name: &str) -> String {
    let last = job_name.rsplit("::").next().unwrap_or(job_name);
    let mut name: String = last
        .chars()
        .map(|c| if tool_name_char(c) { c } else { '_' })
        .collect();
    name.truncate(MAX_TOOL_NAME);
    name
}

/// A tool name the application chose, as it is, or a panic that says what is wrong.
pub(super) fn checked_tool_name(name: &str) -> String {
    assert!(
        !name.is_empty() && name.len() <= MAX_TOOL_NAME && name.chars().all(tool_name_char),
        "tool name `{name}`: use 1 to {MAX_TOOL_NAME} ASCII letters, digits, `_` or `-`"
    );
    name.to_owned()
}

pub(super) fn humanize(duration: Duration) -> String {
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
