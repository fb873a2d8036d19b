//! What `#[recurring]` generates: one job and one schedule per fn whatever the order of
//! `#[job]` and `#[recurring]`, stored by a server at start with every option; every
//! misuse's error (in `tests/ui/recurring/`); and the macro refusing exactly the
//! schedules the runtime refuses.

use jobs::Job;
use std::path::Path;

use crate::support::{Backend, TestDb};
use chrono::{DateTime, TimeZone, Utc};
use jobs::prelude::*;
use jobs::{
    JobServer, ManualClock, MissedTicks, RecurringSource, declared_recurring, registered_jobs,
};

/// The application's state, injected into a recurring job.
#[derive(Debug, Clone)]
pub(crate) struct App;

#[recurring(id = "above", cron = "0 8 * * MON-FRI", zone = "Europe/Brussels")]
#[job(display = "Recurring above job", retries = 2)]
async fn recurring_above_job(ctx: JobContext) {
    let _ = ctx;
}

#[job(display = "Job above recurring", name = "poll.below")]
#[recurring(
    id = "below",
    every = "15m",
    missed = "catch_up(10)",
    allow_overlap = true
)]
async fn job_above_recurring(State(_app): State<App>) {}

#[recurring(id = "alone", cron = "30 0 2 * * *", missed = "skip")]
async fn recurring_alone() {}

/// Through paths, with `jobs` renamed: `crate` on `#[recurring]` holds for both.
mod renamed {
    pub(crate) use jobs as my_jobs;

    #[jobs::job(retries = 1)]
    #[jobs::recurring(
        id = "renamed",
        every = "1h30m",
        missed = "run_once",
        crate = "self::my_jobs"
    )]
    pub(crate) async fn nightly_cleanup() {}
}

const JOBS: [&str; 4] = [
    "macros::recurring::recurring_above_job",
    "poll.below",
    "macros::recurring::recurring_alone",
    "macros::recurring::renamed::nightly_cleanup",
];

/// Every `#[recurring]` of this binary, by id: these, and the job macro's tests' nightly
/// report.
const DECLARED: [&str; 5] = [
    "above",
    "alone",
    "below",
    "macros.nightly-report",
    "renamed",
];

backend_tests!(a_server_stores_every_declared_schedule_with_its_options);

#[test]
fn each_fn_is_one_job_and_one_schedule_in_either_order() {
    let registered = registered_jobs();
    for name in JOBS {
        let count = registered.iter().filter(|&&job| job == name).count();
        assert_eq!(
            count, 1,
            "{name} registered {count} times in {registered:?}"
        );
    }
    let declared: Vec<&str> = declared_recurring().iter().map(|d| d.id()).collect();
    assert_eq!(declared, DECLARED);
    // A recurring job is still a job, with its struct and its options.
    assert_eq!(
        <RecurringAboveJob as Job>::DESCRIPTOR.retries_setting(),
        Some(2)
    );
    assert_eq!(<JobAboveRecurring as Job>::DESCRIPTOR.name(), "poll.below");
    assert_eq!(RecurringAlone.display_name(), "recurring_alone");
    assert_eq!(
        <renamed::NightlyCleanup as Job>::DESCRIPTOR.retries_setting(),
        Some(1)
    );
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

async fn a_server_stores_every_declared_schedule_with_its_options(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Friday 2026-11-27, 06:00 UTC.
    let now = utc(2026, 11, 27, 6, 0);
    let clock = ManualClock::new(now);
    let jobs = db.jobs(&clock).await;
    let server = JobServer::builder(jobs.clone())
        .state(App)
        .start()
        .await
        .expect("server starts");
    let stored = jobs.recurring().list().await.unwrap();
    server.shutdown().await;
    let ids: Vec<&str> = stored.iter().map(|info| info.id.as_str()).collect();
    assert_eq!(ids, DECLARED);
    for info in &stored {
        assert_eq!(info.source, RecurringSource::Code, "{}", info.id);
        assert!(info.enabled, "{}", info.id);
        assert_eq!(info.payload, serde_json::Value::Null, "{}", info.id);
    }
    let [above, alone, below, _, renamed] = &stored[..] else {
        unreachable!()
    };

    assert_eq!(above.schedule, "0 8 * * MON-FRI");
    assert_eq!(above.zone, "Europe/Brussels");
    assert_eq!(above.job_name, JOBS[0]);
    assert_eq!(above.display_name, "Recurring above job");
    assert_eq!(above.max_retries, Some(2));
    assert_eq!(above.missed, MissedTicks::RunOnce);
    assert!(!above.allow_overlap);
    assert_eq!(above.next_run_at, utc(2026, 11, 27, 7, 0), "08:00 CET");

    assert_eq!(below.schedule, "@every 900000ms");
    assert_eq!(below.zone, "UTC");
    assert_eq!(below.job_name, "poll.below");
    assert_eq!(below.display_name, "Job above recurring");
    assert_eq!(below.max_retries, None);
    assert_eq!(below.missed, MissedTicks::CatchUp { max: 10 });
    assert!(below.allow_overlap);
    assert_eq!(below.next_run_at, utc(2026, 11, 27, 6, 15));

    assert_eq!(alone.schedule, "30 0 2 * * *");
    assert_eq!(alone.job_name, JOBS[2]);
    assert_eq!(alone.display_name, "recurring_alone");
    assert_eq!(alone.missed, MissedTicks::Skip);
    assert_eq!(
        alone.next_run_at,
        utc(2026, 11, 28, 2, 0) + chrono::Duration::seconds(30)
    );

    assert_eq!(renamed.schedule, "@every 5400000ms");
    assert_eq!(renamed.job_name, JOBS[3]);
    assert_eq!(renamed.max_retries, Some(1));
    assert_eq!(renamed.missed, MissedTicks::RunOnce);
}

/// The macro and the runtime both apply the rules of `jobs-grammar`. This holds them to
/// it end to end: every `cron`, `zone` and `every` string in the trybuild files is run
/// through the runtime too. Strings in
/// `tests/ui/recurring/bad_<cron|zone|interval>.rs` must be refused by the runtime, and
/// by the macro (its error, in the `.stderr` that trybuild compares, names each one);
/// every other string must be accepted by both (the pass files compile).
#[test]
fn the_macro_and_the_runtime_accept_the_same_schedules() {
    type Rule = fn(&str) -> bool;
    let kinds: [(&str, &str, Rule); 3] = [
        ("cron", "cron", |s| jobs::parse_cron(s).is_ok()),
        ("zone", "zone", |s| jobs::parse_zone(s).is_ok()),
        ("every", "interval", |s| jobs::parse_interval(s).is_ok()),
    ];
    let mut checked = 0;
    for dir in ["tests/ui/recurring", "tests/ui/recurring-pass"] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|ext| ext != "rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            let file = path.file_stem().unwrap().to_str().unwrap();
            for (key, kind, runtime_accepts) in kinds {
                let bad_file = file == format!("bad_{kind}");
                for value in values_of(&source, key) {
                    checked += 1;
                    assert_eq!(
                        runtime_accepts(value),
                        !bad_file,
                        "{}: the runtime {} {key} = {value:?}",
                        path.display(),
                        if bad_file { "accepts" } else { "refuses" },
                    );
                    if bad_file {
                        assert_macro_refused(&path, value);
                    }
                }
            }
        }
    }
    assert!(checked > 40, "only {checked} strings found");
}

/// Every `key = "…"` in `source`.
fn values_of<'a>(source: &'a str, key: &str) -> Vec<&'a str> {
    let opening = format!("{key} = \"");
    source
        .match_indices(&opening)
        .map(|(at, _)| {
            let rest = &source[at + opening.len()..];
            &rest[..rest.find('"').expect("closing quote")]
        })
        .collect()
}

/// The `.stderr` next to `file` has an error about `value`: naming it, or, for a blank
/// one, saying it is empty.
fn assert_macro_refused(file: &Path, value: &str) {
    let stderr = std::fs::read_to_string(file.with_extension("stderr")).unwrap();
    let named = format!("`{value}`");
    let refused = stderr.lines().any(|line| {
        line.starts_with("error: ")
            && (line.contains(&named) || value.trim().is_empty() && line.ends_with(" is empty"))
    });
    assert!(refused, "{}: no error for {value:?}", file.display());
}
