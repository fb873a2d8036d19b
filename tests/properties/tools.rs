//! Agent tool calls against the schemas `#[job]` derives, through `ToolCatalog::call_tool`
//! on a real database: any arguments are refused with the field that is wrong or run;
//! a value of the job's own type is accepted and stored as it is; arguments near the
//! schema are accepted exactly when serde decodes them; the when arguments (`at`,
//! `delay_seconds`, `cron`, `zone`) keep to the catalog's limits.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs::prelude::*;
use jobs::{Clock, Jobs, ManualClock, ToolCatalog, ToolErrorKind, ToolResult};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::support::{Backend, TestDb, setup};
use crate::{cases, json_value, runtime, text};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Medium {
    Email,
    Sms,
    Webhook { secret: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
struct Channel {
    kind: Medium,
    address: String,
}

/// The example's reminder (`examples/agent_tools.rs`).
#[job(display = "Remind {user_id}: {text}")]
async fn send_reminder(user_id: u64, text: String) {
    let _ = (user_id, text);
}

/// A job with data of most kinds schemars describes.
#[allow(clippy::too_many_arguments)]
#[job(display = "Book a table for {guests}")]
async fn book_table(
    guests: u8,
    party: String,
    minute_of_day: u32,
    offset: i16,
    channel: Channel,
    tags: Vec<String>,
    note: Option<String>,
    vip: bool,
    budget: f64,
    initial: char,
    seats: Option<Vec<u16>>,
    #[serde(default)] repeat: u64,
) {
    let _ = (
        guests,
        party,
        minute_of_day,
        offset,
        channel,
        tags,
        note,
        vip,
        budget,
        initial,
        seats,
        repeat,
    );
}

fn medium() -> impl Strategy<Value = Medium> {
    prop_oneof![
        Just(Medium::Email),
        Just(Medium::Sms),
        prop::option::of(text()).prop_map(|secret| Medium::Webhook { secret }),
    ]
}

fn book_table_value() -> impl Strategy<Value = BookTable> {
    (
        (any::<u8>(), text(), any::<u32>(), any::<i16>()),
        (medium(), text()),
        (
            prop::collection::vec(text(), 0..3),
            prop::option::of(text()),
        ),
        (any::<bool>(), any::<i32>(), any::<char>()),
        (
            prop::option::of(prop::collection::vec(any::<u16>(), 0..3)),
            any::<u64>(),
        ),
    )
        .prop_map(
            |(
                (guests, party, minute_of_day, offset),
                (kind, address),
                (tags, note),
                (vip, budget, initial),
                (seats, repeat),
            )| BookTable {
                guests,
                party,
                minute_of_day,
                offset,
                channel: Channel { kind, address },
                tags,
                note,
                vip,
                // Whole numbers: a float's JSON text may not read back to the same bits.
                budget: f64::from(budget),
                initial,
                seats,
                repeat,
            },
        )
}

struct Tools {
    catalog: ToolCatalog,
    jobs: Jobs,
    clock: ManualClock,
    _db: TestDb,
}

/// How far ahead a call may schedule, and how often a schedule may run.
const HORIZON: Duration = Duration::from_secs(30 * 86_400);
const MIN_INTERVAL: Duration = Duration::from_secs(3600);

impl Tools {
    async fn new(backend: Backend) -> Self {
        let (db, clock, jobs, _probe) = setup(backend).await;
        let catalog = ToolCatalog::new(jobs.clone())
            .allow_recurring::<SendReminder>()
            .allow_recurring::<BookTable>()
            .max_horizon(HORIZON)
            .min_interval(MIN_INTERVAL)
            // Every case stores under one caller: the quotas are tested elsewhere.
            .max_pending_jobs(u32::MAX)
            .max_recurring_jobs(u32::MAX);
        Self {
            catalog,
            jobs,
            clock,
            _db: db,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Calls the tool; a refusal must say which argument is wrong (unless the tool does
    /// not exist or the thing to delete is not found), be no failure of the store, and
    /// store nothing.
    async fn call(
        &self,
        tool: &str,
        arguments: Value,
    ) -> Result<Result<ToolResult, jobs::ToolError>, TestCaseError> {
        let before = self.jobs.count_by_state().await.unwrap();
        let result = self
            .catalog
            .call_tool(tool, arguments.clone(), "caller-1")
            .await;
        if let Err(error) = &result {
            prop_assert_ne!(
                error.kind,
                ToolErrorKind::Internal,
                "{} {}: {:?}",
                tool,
                arguments,
                error
            );
            prop_assert!(!error.message.is_empty());
            if !matches!(
                error.kind,
                ToolErrorKind::UnknownTool | ToolErrorKind::NotFound
            ) {
                prop_assert!(error.field.is_some(), "{} {}: {:?}", tool, arguments, error);
            }
            prop_assert_eq!(self.jobs.count_by_state().await.unwrap(), before);
        }
        Ok(result)
    }
}

fn with(arguments: &Value, extra: Value) -> Value {
    let mut arguments = arguments.clone();
    let object = arguments.as_object_mut().unwrap();
    object.extend(extra.as_object().unwrap().clone());
    arguments
}

/// Replaces the value at one place of `value` (`choice` picks it among every object
/// field and array item) by `replacement`, or removes it when that is `None`.
fn mutate(value: &mut Value, choice: usize, replacement: Option<Value>) {
    fn places(value: &Value, path: &mut Vec<String>, found: &mut Vec<Vec<String>>) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    path.push(key.clone());
                    found.push(path.clone());
                    places(inner, path, found);
                    path.pop();
                }
            }
            Value::Array(items) => {
                for (index, inner) in items.iter().enumerate() {
                    path.push(index.to_string());
                    found.push(path.clone());
                    places(inner, path, found);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    places(value, &mut Vec::new(), &mut found);
    let Some(path) = found.get(choice % found.len().max(1)) else {
        return;
    };
    let (last, parents) = path.split_last().unwrap();
    let mut parent = value;
    for step in parents {
        parent = match parent {
            Value::Object(map) => map.get_mut(step).unwrap(),
            Value::Array(items) => &mut items[step.parse::<usize>().unwrap()],
            _ => unreachable!(),
        };
    }
    match (parent, replacement) {
        (Value::Object(map), Some(new)) => {
            map.insert(last.clone(), new);
        }
        (Value::Object(map), None) => {
            map.remove(last);
        }
        (Value::Array(items), Some(new)) => items[last.parse::<usize>().unwrap()] = new,
        (Value::Array(items), None) => {
            items.remove(last.parse::<usize>().unwrap());
        }
        _ => unreachable!(),
    }
}

/// Replacements near what the schema asks for: numbers at and past each integer
/// type's bounds, floats, strings of one and two characters, and any JSON.
fn replacement() -> impl Strategy<Value = Option<Value>> {
    let near = prop_oneof![
        prop::sample::select(vec![
            json!(255),
            json!(256),
            json!(-1),
            json!(65_535),
            json!(65_536),
            json!(4_294_967_295u64),
            json!(4_294_967_296u64),
            json!(-32_768),
            json!(-32_769),
            json!(32_768),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1.0),
            json!(1.5),
            json!(1e300),
            json!("x"),
            json!("xy"),
            json!(""),
            json!("email"),
            json!("webhook"),
            json!({"webhook": {}}),
            json!({"webhook": {"secret": null}}),
            json!(null),
            json!([]),
            json!({}),
        ])
        .prop_map(Some),
        json_value().prop_map(Some),
    ];
    prop_oneof![4 => near, 1 => Just(None)]
}

#[test]
fn any_arguments_to_any_tool_are_refused_with_their_field_or_run() {
    let runtime = runtime();
    let tools = runtime.block_on(Tools::new(Backend::Sqlite));
    let tool = prop_oneof![
        prop::sample::select(&[
            "run_send_reminder",
            "schedule_send_reminder",
            "schedule_send_reminder_recurring",
            "run_book_table",
            "schedule_book_table",
            "schedule_book_table_recurring",
            "list_recurring_jobs",
            "delete_job",
        ])
        .prop_map(str::to_owned),
        text(),
    ];
    proptest!(cases(256), |(tool in tool, arguments in json_value())| {
        let _answer = runtime.block_on(tools.call(&tool, arguments))?;
    });
}

fn values_of_the_jobs_type_are_accepted_and_stored_as_they_are(backend: Backend, count: u32) {
    let runtime = runtime();
    let tools = runtime.block_on(Tools::new(backend));
    proptest!(cases(count), |(value in book_table_value(), delay in prop::option::of(1..=HORIZON.as_secs()), user_id in any::<u64>(), text in text())| {
        runtime.block_on(async {
            // The example's reminder: its text is in its display name too.
            let reminder = SendReminder { user_id, text };
            let arguments = serde_json::to_value(&reminder).unwrap();
            let result = tools.call("run_send_reminder", arguments.clone()).await?;
            let Ok(ToolResult::Enqueued { job_id, .. }) = result else {
                return Err(TestCaseError::fail(format!("{arguments}: {result:?}")));
            };
            prop_assert_eq!(tools.jobs.get(job_id).await.unwrap().payload, arguments);
            let arguments = serde_json::to_value(&value).unwrap();
            let result = match delay {
                None => tools.call("run_book_table", arguments).await?,
                Some(delay) => {
                    let arguments = with(&arguments, json!({"delay_seconds": delay}));
                    tools.call("schedule_book_table", arguments).await?
                }
            };
            let Ok(ToolResult::Enqueued { job_id, run_at, .. }) = result else {
                return Err(TestCaseError::fail(format!("{value:?}: {result:?}")));
            };
            let expected_at = tools.now() + chrono::Duration::seconds(delay.unwrap_or(0) as i64);
            prop_assert_eq!(run_at, expected_at);
            let stored = tools.jobs.get(job_id).await.unwrap();
            let back: BookTable = serde_json::from_value(stored.payload).unwrap();
            prop_assert_eq!(
                serde_json::to_value(&back).unwrap(),
                serde_json::to_value(&value).unwrap()
            );
            Ok(())
        })?;
    });
}

#[test]
fn sqlite_values_of_the_jobs_type_are_accepted_and_stored_as_they_are() {
    values_of_the_jobs_type_are_accepted_and_stored_as_they_are(Backend::Sqlite, 128);
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_values_of_the_jobs_type_are_accepted_and_stored_as_they_are() {
    values_of_the_jobs_type_are_accepted_and_stored_as_they_are(Backend::Postgres, 64);
}

#[test]
fn arguments_near_the_schema_are_accepted_exactly_when_they_decode() {
    let runtime = runtime();
    let tools = runtime.block_on(Tools::new(Backend::Sqlite));
    let mutations = prop::collection::vec((any::<usize>(), replacement()), 1..3);
    proptest!(cases(256), |(value in book_table_value(), mutations in mutations)| {
        let mut arguments = serde_json::to_value(&value).unwrap();
        for (choice, replacement) in mutations {
            mutate(&mut arguments, choice, replacement);
        }
        let decodes = serde_json::from_value::<BookTable>(arguments.clone());
        let called = runtime.block_on(tools.call("run_book_table", arguments.clone()))?;
        prop_assert_eq!(called.is_ok(), decodes.is_ok(), "{}: {:?} / {:?}", arguments, called, decodes.err());
    });
}

/// `at` as a model may write it: RFC 3339 around now in any offset, or not quite.
fn at_argument(now: DateTime<Utc>) -> impl Strategy<Value = Value> {
    let around = (
        -86_400i64..2 * HORIZON.as_secs() as i64,
        -14 * 60..=14 * 60i32,
    )
        .prop_map(move |(seconds, offset_minutes)| {
            let offset = chrono::FixedOffset::east_opt(offset_minutes * 60).unwrap();
            let at = (now + chrono::Duration::seconds(seconds)).with_timezone(&offset);
            json!(at.to_rfc3339())
        });
    prop_oneof![3 => around, 1 => text().prop_map(Value::from), 1 => json_value()]
}

#[test]
fn a_one_off_run_is_scheduled_within_the_horizon_or_refused_on_its_when_argument() {
    let runtime = runtime();
    let tools = runtime.block_on(Tools::new(Backend::Sqlite));
    let now = tools.now();
    let when = prop_oneof![
        at_argument(now).prop_map(|at| json!({"at": at})),
        json_value().prop_map(|delay| json!({"delay_seconds": delay})),
        (0..2 * HORIZON.as_secs()).prop_map(|delay| json!({"delay_seconds": delay})),
        (at_argument(now), any::<u32>())
            .prop_map(|(at, delay)| json!({"at": at, "delay_seconds": delay})),
        Just(json!({})),
    ];
    proptest!(cases(256), |(user_id in any::<u64>(), text in text(), when in when)| {
        let arguments = with(&json!({"user_id": user_id, "text": text}), when.clone());
        let result = runtime.block_on(tools.call("schedule_send_reminder", arguments))?;
        match result {
            Ok(ToolResult::Enqueued { run_at, .. }) => {
                prop_assert!(run_at >= now && run_at - now <= chrono::Duration::from_std(HORIZON).unwrap());
                if let Some(at) = when["at"].as_str() {
                    prop_assert_eq!(run_at, DateTime::parse_from_rfc3339(at).unwrap());
                }
            }
            Ok(other) => return Err(TestCaseError::fail(format!("{other:?}"))),
            Err(error) => {
                let field = error.field.as_deref().unwrap_or_default();
                prop_assert!(
                    ["/at", "/delay_seconds", "/text", ""].contains(&field),
                    "{}: {:?}", when, error
                );
            }
        }
    });
}

/// A cron as a model may write it: fields of crons that fire hourly or less often,
/// or not quite a cron.
fn cron_argument() -> impl Strategy<Value = String> {
    let field = |high: u32| {
        prop_oneof![
            Just("*".to_owned()),
            (0..=high).prop_map(|n| n.to_string()),
            (1..=high.max(1)).prop_map(|step| format!("*/{step}")),
            (0..=high, 0..=high).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
        ]
    };
    let five = (field(59), field(23), field(28), field(12), field(7)).prop_map(
        |(minute, hour, day, month, weekday)| format!("{minute} {hour} {day} {month} {weekday}"),
    );
    prop_oneof![3 => five, 1 => "[0-9*/ ,@a-zA-Z-]{0,16}", 1 => text()]
}

#[test]
fn a_recurring_schedule_fires_no_more_often_than_allowed_or_is_refused_on_its_cron_or_zone() {
    let runtime = runtime();
    let tools = runtime.block_on(Tools::new(Backend::Sqlite));
    let now = tools.now();
    let zone = prop_oneof![
        prop::sample::select(&[
            "UTC",
            "Europe/Brussels",
            "America/New_York",
            "Asia/Kathmandu"
        ])
        .prop_map(Value::from),
        text().prop_map(Value::from),
        json_value(),
    ];
    proptest!(cases(128), |(cron in cron_argument(), zone in prop::option::of(zone))| {
        let mut when = Map::new();
        when.insert("cron".to_owned(), Value::from(cron.clone()));
        if let Some(zone) = &zone {
            when.insert("zone".to_owned(), zone.clone());
        }
        let arguments = with(&json!({"user_id": 7, "text": "stretch"}), Value::Object(when));
        let result = runtime.block_on(tools.call("schedule_send_reminder_recurring", arguments))?;
        match result {
            Ok(ToolResult::Recurring { cron: stored, zone: stored_zone, next_run_at, .. }) => {
                prop_assert_eq!(stored, cron.trim());
                let schedule = jobs::Schedule::cron_in(&cron, &stored_zone).unwrap();
                let mut previous = next_run_at.expect("an accepted cron fires");
                prop_assert!(previous > now);
                for _ in 0..8 {
                    let Some(next) = schedule.next_after(previous) else { break };
                    prop_assert!((next - previous).to_std().unwrap() >= MIN_INTERVAL, "{} {}", cron, next);
                    previous = next;
                }
            }
            Ok(other) => return Err(TestCaseError::fail(format!("{other:?}"))),
            Err(error) => {
                let field = error.field.as_deref().unwrap_or_default();
                prop_assert!(["/cron", "/zone"].contains(&field), "{} {:?}: {:?}", cron, zone, error);
            }
        }
    });
}

/// Found by `a_one_off_run_is_scheduled_within_the_horizon_or_refused_on_its_when_argument`:
/// a `delay_seconds` past what a time can hold panicked in the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_past_any_time_is_too_far_ahead() {
    let tools = Tools::new(Backend::Sqlite).await;
    for delay in [json!(9_223_372_036_854_776u64), json!(u64::MAX)] {
        let arguments = json!({"user_id": 7, "text": "later", "delay_seconds": delay});
        let error = tools
            .catalog
            .call_tool("schedule_send_reminder", arguments, "caller-1")
            .await
            .unwrap_err();
        assert_eq!(error.kind, ToolErrorKind::TooFarAhead, "{error:?}");
        assert_eq!(error.field.as_deref(), Some("/delay_seconds"));
    }
}
