//! Recurring jobs end to end, on each backend, with a manual clock: ticks over a week,
//! several servers racing for each tick, daylight-saving days, missed-tick policies
//! after an outage, and no overlapping runs.

use jobs::Job;
use std::time::Duration;

use crate::support::{Backend, Probe, TestDb, test_server, wait_for_state, wait_until};
use chrono::{DateTime, TimeZone, Utc};
use jobs::prelude::*;
use jobs::{JobQuery, JobServer, Jobs, ManualClock, MissedTicks, RecurringSource};

backend_tests!(
    cron_job_fires_at_each_tick_over_a_week,
    three_servers_create_exactly_one_run_per_tick,
    daily_job_on_the_spring_forward_day_runs_once_after_the_gap,
    hourly_job_through_the_fall_back_hour_runs_every_real_hour,
    missed_ticks_are_skipped,
    missed_ticks_run_once,
    missed_ticks_catch_up_within_the_bound,
    catch_up_runs_one_after_another_without_overlap,
    no_new_run_while_the_previous_one_is_processing,
    overlap_allowed_when_asked,
    trigger_list_reschedule_disable_and_delete,
    interval_schedule_fires_every_interval,
    declared_recurring_job_is_stored_at_server_start,
    recurring_job_gone_from_the_code_is_disabled,
    applications_on_one_database_never_disable_each_others_schedules,
    an_old_release_restarting_leaves_the_new_releases_schedules,
    runs_carry_the_jobs_labels_and_those_added,
);

#[job(display = "Summarize inbox")]
async fn summarize_inbox(State(probe): State<Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
    probe.note(ctx.now().to_rfc3339());
}

#[job]
async fn long_report(State(probe): State<Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
    probe.gate.acquire().await.expect("gate open").forget();
}

#[job]
async fn catch_up_report(State(probe): State<Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
    let _inside = probe.inside("catch-up");
    // Long enough for a second run, if one started, to overlap this one.
    tokio::time::sleep(Duration::from_millis(30)).await;
}

#[job(labels = ["tenant-{tenant_id}"])]
async fn tenant_report(tenant_id: u32, State(probe): State<Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
    probe.note(tenant_id.to_string());
}

#[recurring(
    id = "declared-morning-summary",
    cron = "0 8 * * *",
    zone = "Europe/Brussels"
)]
#[job(display = "Declared morning summary")]
async fn declared_morning_summary(State(probe): State<Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

async fn start_server(jobs: &Jobs, probe: &Probe) -> JobServer {
    test_server(jobs, probe)
        .server_timeout(Duration::from_secs(365 * 24 * 3600))
        // The tests move the clock by days: keep finished runs to count them.
        .delete_succeeded_after(Duration::from_secs(365 * 24 * 3600))
        .start()
        .await
        .expect("server starts")
}

async fn runs_of(jobs: &Jobs, name: &str) -> Vec<jobs::JobSummary> {
    let mut runs = jobs
        .list(JobQuery::default().name(name).limit(1000))
        .await
        .unwrap()
        .items;
    runs.sort_by_key(|run| run.run_at);
    runs
}

fn summarize_inbox_name() -> &'static str {
    <SummarizeInbox as Job>::DESCRIPTOR.name()
}

/// Waits until `count` runs exist and all of them succeeded.
async fn wait_for_runs(jobs: &Jobs, count: usize) {
    wait_until(&format!("{count} runs succeeded"), || async {
        let runs = runs_of(jobs, summarize_inbox_name()).await;
        runs.len() == count && runs.iter().all(|run| run.state == JobState::Succeeded)
    })
    .await;
}

async fn setup(backend: Backend, start: DateTime<Utc>) -> (TestDb, ManualClock, Jobs, Probe) {
    let db = TestDb::new(backend).await;
    let clock = ManualClock::new(start);
    let jobs = db.jobs(&clock).await;
    (db, clock, jobs, Probe::new())
}

async fn cron_job_fires_at_each_tick_over_a_week(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend, utc(2026, 11, 23, 0, 0)).await;
    jobs.recurring()
        .cron("morning-email-summary", "0 8 * * *", SummarizeInbox {})
        .zone("Europe/Brussels")
        .await
        .unwrap();
    let server = start_server(&jobs, &probe).await;
    for day in 0..7 {
        // 08:00 in Brussels is 07:00 UTC in winter.
        let tick = utc(2026, 11, 23, 7, 0) + chrono::Duration::days(day);
        clock.set(tick - chrono::Duration::seconds(1));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(
            runs_of(&jobs, summarize_inbox_name()).await.len(),
            day as usize,
            "fired early"
        );
        clock.set(tick);
        wait_for_runs(&jobs, day as usize + 1).await;
        let info = jobs.recurring().get("morning-email-summary").await.unwrap();
        assert_eq!(info.next_run_at, tick + chrono::Duration::days(1));
        assert_eq!(info.last_run_at, Some(tick));
    }
    server.shutdown().await;
    let ticks: Vec<_> = runs_of(&jobs, summarize_inbox_name())
        .await
        .iter()
        .map(|run| run.run_at)
        .collect();
    let expected: Vec<_> = (0..7)
        .map(|day| utc(2026, 11, 23, 7, 0) + chrono::Duration::days(day))
        .collect();
    assert_eq!(ticks, expected);
}

async fn three_servers_create_exactly_one_run_per_tick(backend: Backend) {
    let (db, clock, jobs, probe) = setup(backend, utc(2026, 11, 27, 9, 0)).await;
    jobs.recurring()
        .cron("every-minute", "* * * * *", SummarizeInbox {})
        .await
        .unwrap();
    let mut servers = Vec::new();
    for _ in 0..3 {
        // Each server with a client and pool of its own, as separate nodes would have.
        let node = db.jobs(&clock).await;
        servers.push(start_server(&node, &probe).await);
    }
    for tick in 1..=20 {
        clock.advance(Duration::from_secs(60));
        wait_for_runs(&jobs, tick).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for server in servers {
        server.shutdown().await;
    }
    let runs = runs_of(&jobs, summarize_inbox_name()).await;
    assert_eq!(runs.len(), 20);
    for run in &runs {
        assert_eq!(
            probe.runs(run.id),
            1,
            "run {} ran {} times",
            run.id,
            probe.runs(run.id)
        );
    }
}

async fn daily_job_on_the_spring_forward_day_runs_once_after_the_gap(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend, utc(2026, 3, 28, 12, 0)).await;
    jobs.recurring()
        .cron("nightly", "30 2 * * *", SummarizeInbox {})
        .zone("Europe/Brussels")
        .await
        .unwrap();
    let server = start_server(&jobs, &probe).await;
    // 02:30 does not exist on 2026-03-29 in Brussels; the run comes right after the gap.
    clock.set(utc(2026, 3, 29, 0, 59));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(runs_of(&jobs, summarize_inbox_name()).await.is_empty());
    clock.set(utc(2026, 3, 29, 1, 0));
    wait_for_runs(&jobs, 1).await;
    clock.set(utc(2026, 3, 30, 0, 30)); // 02:30 CEST the next day
    wait_for_runs(&jobs, 2).await;
    server.shutdown().await;
    let ticks: Vec<_> = runs_of(&jobs, summarize_inbox_name())
        .await
        .iter()
        .map(|run| run.run_at)
        .collect();
    assert_eq!(ticks, [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]);
}

async fn hourly_job_through_the_fall_back_hour_runs_every_real_hour(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend, utc(2026, 10, 24, 21, 30)).await;
    jobs.recurring()
        .cron("hourly", "0 * * * *", SummarizeInbox {})
        .zone("Europe/Brussels")
        .await
        .unwrap();
    let server = start_server(&jobs, &probe).await;
    // From 00:00 CEST on the 25th to 00:00 CET on the 26th: 25 real hours.
    for hour in 0..25 {
        clock.set(utc(2026, 10, 24, 22, 0) + chrono::Duration::hours(hour));
        wait_for_runs(&jobs, hour as usize + 1).await;
    }
    server.shutdown().await;
    let runs = runs_of(&jobs, summarize_inbox_name()).await;
    assert_eq!(runs.len(), 25);
    for pair in runs.windows(2) {
        assert_eq!(pair[1].run_at - pair[0].run_at, chrono::Duration::hours(1));
    }
}

/// Schedules an hourly job with `missed`, lets a first tick run, then lets three days
/// pass with no server and starts one again.
async fn after_a_three_day_outage(backend: Backend, missed: MissedTicks) -> Vec<jobs::JobSummary> {
    let (_db, clock, jobs, probe) = setup(backend, utc(2026, 11, 20, 9, 30)).await;
    jobs.recurring()
        .cron("hourly", "0 * * * *", SummarizeInbox {})
        .missed(missed)
        .await
        .unwrap();
    let server = start_server(&jobs, &probe).await;
    clock.set(utc(2026, 11, 20, 10, 0));
    wait_for_runs(&jobs, 1).await;
    server.shutdown().await;

    clock.set(utc(2026, 11, 23, 10, 20));
    let server = start_server(&jobs, &probe).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    wait_until("runs finish", || async {
        let caught_up =
            jobs.recurring().get("hourly").await.unwrap().next_run_at == utc(2026, 11, 23, 11, 0);
        caught_up
            && runs_of(&jobs, summarize_inbox_name())
                .await
                .iter()
                .all(|run| run.state == JobState::Succeeded)
    })
    .await;
    let runs = runs_of(&jobs, summarize_inbox_name()).await;
    // Back on schedule afterwards, whatever the policy.
    let info = jobs.recurring().get("hourly").await.unwrap();
    assert_eq!(info.next_run_at, utc(2026, 11, 23, 11, 0));
    clock.set(utc(2026, 11, 23, 11, 0));
    wait_for_runs(&jobs, runs.len() + 1).await;
    server.shutdown().await;
    runs
}

async fn missed_ticks_are_skipped(backend: Backend) {
    let runs = after_a_three_day_outage(backend, MissedTicks::Skip).await;
    assert_eq!(runs.len(), 1, "only the tick before the outage ran");
}

async fn missed_ticks_run_once(backend: Backend) {
    let runs = after_a_three_day_outage(backend, MissedTicks::RunOnce).await;
    assert_eq!(runs.len(), 2);
    assert_eq!(
        runs[1].run_at,
        utc(2026, 11, 23, 10, 0),
        "one run for the latest missed tick"
    );
}

async fn missed_ticks_catch_up_within_the_bound(backend: Backend) {
    let runs = after_a_three_day_outage(backend, MissedTicks::CatchUp { max: 5 }).await;
    assert_eq!(runs.len(), 1 + 5);
    let caught_up: Vec<_> = runs[1..].iter().map(|run| run.run_at).collect();
    assert_eq!(
        caught_up,
        (6..=10)
            .map(|h| utc(2026, 11, 23, h, 0))
            .collect::<Vec<_>>()
    );
}

async fn catch_up_runs_one_after_another_without_overlap(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend, utc(2026, 11, 20, 4, 30)).await;
    jobs.recurring()
        .cron("hourly-catch-up", "0 * * * *", CatchUpReport {})
        .missed(MissedTicks::CatchUp { max: 5 })
        .allow_overlap(false)
        .await
        .unwrap();
    // Five hours of downtime, then a server with eight workers.
    clock.set(utc(2026, 11, 20, 9, 30));
    let server = test_server(&jobs, &probe)
        .worker_count(8)
        .server_timeout(Duration::from_secs(365 * 24 * 3600))
        .delete_succeeded_after(Duration::from_secs(365 * 24 * 3600))
        .start()
        .await
        .unwrap();
    let name = <CatchUpReport as Job>::DESCRIPTOR.name();
    wait_until("five catch-up runs succeed", || async {
        let runs = runs_of(&jobs, name).await;
        runs.len() == 5 && runs.iter().all(|run| run.state == JobState::Succeeded)
    })
    .await;
    server.shutdown().await;
    assert_eq!(probe.max_of("catch-up"), 1, "two catch-up runs ran at once");
    let ticks: Vec<_> = runs_of(&jobs, name)
        .await
        .iter()
        .map(|run| run.run_at)
        .collect();
    assert_eq!(
        ticks,
        (5..=9).map(|h| utc(2026, 11, 20, h, 0)).collect::<Vec<_>>()
    );
    let info = jobs.recurring().get("hourly-catch-up").await.unwrap();
    assert_eq!(info.next_run_at, utc(2026, 11, 20, 10, 0));
}

async fn no_new_run_while_the_previous_one_is_processing(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend, utc(2026, 11, 27, 9, 30)).await;
    jobs.recurring()
        .cron("report", "0 * * * *", LongReport {})
        .await
        .unwrap();
    let server = start_server(&jobs, &probe).await;
    let name = <LongReport as Job>::DESCRIPTOR.name();
    clock.set(utc(2026, 11, 27, 10, 0));
    wait_until("the first run is processing", || async {
        probe.running() == 1
    })
    .await;
    clock.set(utc(2026, 11, 27, 11, 0));
    wait_until("the 11:00 tick is passed", || async {
        jobs.recurring().get("report").await.unwrap().next_run_at == utc(2026, 11, 27, 12, 0)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        runs_of(&jobs, name).await.len(),
        1,
        "a second run started while the first ran"
    );
    probe.gate.add_permits(1);
    let first = runs_of(&jobs, name).await[0].id;
    wait_for_state(&jobs, first, JobState::Succeeded).await;
    probe.gate.add_permits(1);
    clock.set(utc(2026, 11, 27, 12, 0));
    wait_until("the 12:00 run", || async {
        runs_of(&jobs, name).await.len() == 2
    })
    .await;
    server.shutdown().await;
    let runs = runs_of(&jobs, name).await;
    assert_eq!(runs[1].run_at, utc(2026, 11, 27, 12, 0));
}

async fn overlap_allowed_when_asked(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend, utc(2026, 11, 27, 9, 30)).await;
    jobs.recurring()
        .cron("report", "0 * * * *", LongReport {})
        .allow_overlap(true)
        .await
        .unwrap();
    let server = start_server(&jobs, &probe).await;
    clock.set(utc(2026, 11, 27, 10, 0));
    wait_until("the first run is processing", || async {
        probe.running() == 1
    })
    .await;
    clock.set(utc(2026, 11, 27, 11, 0));
    wait_until("both runs are processing", || async {
        probe.running() == 2
    })
    .await;
    probe.gate.add_permits(2);
    server.shutdown().await;
}

async fn trigger_list_reschedule_disable_and_delete(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend, utc(2026, 11, 27, 9, 30)).await;
    jobs.recurring()
        .cron("morning-email-summary", "0 8 * * *", SummarizeInbox {})
        .await
        .unwrap();
    let listed = jobs.recurring().list().await.unwrap();
    assert_eq!(listed.len(), 1);
    let info = &listed[0];
    assert_eq!(info.schedule, "0 8 * * *");
    assert_eq!(info.zone, "UTC");
    assert_eq!(info.source, RecurringSource::Api);
    assert_eq!(info.display_name, "Summarize inbox");
    assert_eq!(info.next_run_at, utc(2026, 11, 28, 8, 0));
    assert_eq!(info.last_run_at, None);

    let server = start_server(&jobs, &probe).await;
    let run = jobs
        .recurring()
        .trigger("morning-email-summary")
        .await
        .unwrap();
    wait_for_state(&jobs, run, JobState::Succeeded).await;
    let info = jobs.recurring().get("morning-email-summary").await.unwrap();
    assert_eq!(
        info.next_run_at,
        utc(2026, 11, 28, 8, 0),
        "trigger keeps the schedule"
    );

    // Storing the id again with another cron moves its next run.
    jobs.recurring()
        .cron(
            "morning-email-summary",
            "0 9 * * MON-FRI",
            SummarizeInbox {},
        )
        .await
        .unwrap();
    let info = jobs.recurring().get("morning-email-summary").await.unwrap();
    assert_eq!(info.next_run_at, utc(2026, 11, 30, 9, 0), "Monday 09:00");

    jobs.recurring()
        .set_enabled("morning-email-summary", false)
        .await
        .unwrap();
    clock.set(utc(2026, 11, 30, 9, 0));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        runs_of(&jobs, summarize_inbox_name()).await.len(),
        1,
        "disabled, yet it fired"
    );
    let info = jobs.recurring().get("morning-email-summary").await.unwrap();
    assert!(!info.enabled);
    assert_eq!(info.disabled_reason.as_deref(), Some("disabled by a user"));

    jobs.recurring()
        .set_enabled("morning-email-summary", true)
        .await
        .unwrap();
    let info = jobs.recurring().get("morning-email-summary").await.unwrap();
    assert_eq!(
        info.next_run_at,
        utc(2026, 12, 1, 9, 0),
        "missed ticks while off are not run"
    );

    assert!(
        jobs.recurring()
            .delete("morning-email-summary")
            .await
            .unwrap()
    );
    assert!(
        !jobs
            .recurring()
            .delete("morning-email-summary")
            .await
            .unwrap()
    );
    assert!(matches!(
        jobs.recurring().trigger("morning-email-summary").await,
        Err(jobs::Error::RecurringNotFound(_))
    ));
    server.shutdown().await;

    let error = jobs
        .recurring()
        .cron("bad", "0 25 * * *", SummarizeInbox {})
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("invalid cron expression `0 25 * * *`"),
        "{error}"
    );
    let error = jobs
        .recurring()
        .cron("bad", "0 8 * * *", SummarizeInbox {})
        .zone("Mars/Olympus")
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("unknown time zone `Mars/Olympus`"),
        "{error}"
    );
}

async fn interval_schedule_fires_every_interval(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend, utc(2026, 11, 27, 9, 0)).await;
    jobs.recurring()
        .every(
            "poll-inbox",
            Duration::from_secs(15 * 60),
            SummarizeInbox {},
        )
        .await
        .unwrap();
    let server = start_server(&jobs, &probe).await;
    for n in 1..=4 {
        clock.advance(Duration::from_secs(15 * 60));
        wait_for_runs(&jobs, n).await;
    }
    server.shutdown().await;
    let ticks: Vec<_> = runs_of(&jobs, summarize_inbox_name())
        .await
        .iter()
        .map(|run| run.run_at)
        .collect();
    assert_eq!(
        ticks,
        (1..=4)
            .map(|n| utc(2026, 11, 27, 9, 0) + chrono::Duration::minutes(15 * n))
            .collect::<Vec<_>>()
    );
}

async fn declared_recurring_job_is_stored_at_server_start(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend, utc(2026, 11, 27, 6, 0)).await;
    assert!(matches!(
        jobs.recurring().get("declared-morning-summary").await,
        Err(jobs::Error::RecurringNotFound(_))
    ));
    let server = start_server(&jobs, &probe).await;
    let info = jobs
        .recurring()
        .get("declared-morning-summary")
        .await
        .unwrap();
    assert_eq!(info.schedule, "0 8 * * *");
    assert_eq!(info.zone, "Europe/Brussels");
    assert_eq!(info.source, RecurringSource::Code);
    assert_eq!(info.display_name, "Declared morning summary");
    assert!(info.enabled);
    assert_eq!(info.next_run_at, utc(2026, 11, 27, 7, 0));
    clock.set(utc(2026, 11, 27, 7, 0));
    let name = <DeclaredMorningSummary as Job>::DESCRIPTOR.name();
    wait_until("the declared job runs", || async {
        runs_of(&jobs, name)
            .await
            .iter()
            .any(|run| run.state == JobState::Succeeded)
    })
    .await;
    server.shutdown().await;
}

async fn recurring_job_gone_from_the_code_is_disabled(backend: Backend) {
    let (db, _clock, jobs, probe) = setup(backend, utc(2026, 11, 27, 6, 0)).await;
    // A row left by an older binary that declared `#[recurring(id = "old-digest")]`.
    let sql = "INSERT INTO jobs_recurring (id, schedule, zone, job_name, display_name, payload, \
               missed, allow_overlap, enabled, source, next_run_at, created_at, updated_at) \
               VALUES ('old-digest', '0 8 * * *', 'UTC', 'old::digest', 'Old digest', '{}', \
               'run_once', false, true, 'code', $1, $1, $1)";
    match db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            sqlx::query(sql)
                .bind(utc(2026, 11, 27, 8, 0).timestamp_micros())
                .execute(&pool)
                .await
                .unwrap();
        }
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            sqlx::query(sql)
                .bind(utc(2026, 11, 27, 8, 0))
                .execute(&pool)
                .await
                .unwrap();
        }
    }
    let server = start_server(&jobs, &probe).await;
    let info = jobs.recurring().get("old-digest").await.unwrap();
    assert!(!info.enabled);
    assert_eq!(
        info.disabled_reason.as_deref(),
        Some("no longer declared in code")
    );
    assert!(
        jobs.recurring()
            .get("declared-morning-summary")
            .await
            .unwrap()
            .enabled
    );
    server.shutdown().await;
}

async fn applications_on_one_database_never_disable_each_others_schedules(backend: Backend) {
    let (db, _clock, jobs, probe) = setup(backend, utc(2026, 11, 27, 6, 0)).await;
    // Rows declared in code by two applications: `billing` (another binary) and `crm`
    // (this one, which declares `declared-morning-summary` but no longer `crm-digest`).
    for (id, application) in [("billing-invoices", "billing"), ("crm-digest", "crm")] {
        let sql = format!(
            "INSERT INTO jobs_recurring (id, schedule, zone, job_name, display_name, payload, \
             missed, allow_overlap, enabled, source, next_run_at, created_at, updated_at, \
             application) \
             VALUES ('{id}', '0 8 * * *', 'UTC', 'other::job', 'Other', '{{}}', \
             'run_once', false, true, 'code', $1, $1, $1, '{application}')"
        );
        match db.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
                sqlx::query(&sql)
                    .bind(utc(2026, 11, 27, 8, 0).timestamp_micros())
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
                sqlx::query(&sql)
                    .bind(utc(2026, 11, 27, 8, 0))
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        }
    }
    let enabled = |id: &'static str| {
        let jobs = jobs.clone();
        async move { jobs.recurring().get(id).await.unwrap().enabled }
    };
    // Restarted a few times, and a worker binary of a third application beside it.
    for _ in 0..3 {
        let crm = test_server(&jobs, &probe)
            .application("crm")
            .start()
            .await
            .unwrap();
        let worker = test_server(&jobs, &probe)
            .application("mailer")
            .start()
            .await
            .unwrap();
        worker.shutdown().await;
        crm.shutdown().await;
        assert!(enabled("billing-invoices").await, "another application's");
        assert!(!enabled("crm-digest").await, "its own, no longer declared");
        let declared = jobs
            .recurring()
            .get("declared-morning-summary")
            .await
            .unwrap();
        assert!(declared.enabled);
    }
    let declared = jobs
        .recurring()
        .get("declared-morning-summary")
        .await
        .unwrap();
    assert_eq!(declared.application.as_deref(), Some("mailer"));
}

async fn runs_carry_the_jobs_labels_and_those_added(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend, utc(2026, 11, 27, 9, 30)).await;
    jobs.recurring()
        .cron(
            "tenant-7-report",
            "0 10 * * *",
            TenantReport { tenant_id: 7 },
        )
        .label("caller:u1")
        .label("tenant-7")
        .await
        .unwrap();
    let stored = jobs.recurring().get("tenant-7-report").await.unwrap();
    assert_eq!(stored.labels, ["tenant-7", "caller:u1"]);
    let server = start_server(&jobs, &probe).await;
    clock.set(utc(2026, 11, 27, 10, 0));
    let name = <TenantReport as Job>::DESCRIPTOR.name();
    wait_until("the tick's run succeeded", || async {
        let runs = runs_of(&jobs, name).await;
        runs.len() == 1 && runs[0].state == JobState::Succeeded
    })
    .await;
    let triggered = jobs.recurring().trigger("tenant-7-report").await.unwrap();
    wait_for_state(&jobs, triggered, JobState::Succeeded).await;
    server.shutdown().await;
    for run in runs_of(&jobs, name).await {
        let run = jobs.get(run.id).await.unwrap();
        assert_eq!(run.labels, ["tenant-7", "caller:u1"], "{}", run.id);
    }
    // Labels filter on the dashboard finds the runs.
    let labelled = jobs
        .list(JobQuery::default().label("caller:u1"))
        .await
        .unwrap();
    assert_eq!(labelled.items.len(), 2);
}

/// A rolling deploy: a node of the old release restarts after the new release
/// registered; it leaves the schedules as the new one left them.
async fn an_old_release_restarting_leaves_the_new_releases_schedules(backend: Backend) {
    // Before the 08:00 Brussels tick (07:00 UTC), so only registrations touch the row.
    let (_db, clock, jobs, probe) = setup(backend, utc(2026, 11, 27, 4, 0)).await;
    let registered = |jobs: Jobs| async move {
        jobs.recurring()
            .get("declared-morning-summary")
            .await
            .unwrap()
            .updated_at
    };
    let start = |release: &'static str| {
        test_server(&jobs, &probe)
            .application("crm")
            .release(release)
            .start()
    };
    start("2.0.0").await.unwrap().shutdown().await;
    let by_new = registered(jobs.clone()).await;
    clock.set(utc(2026, 11, 27, 5, 0));
    start("1.9.2").await.unwrap().shutdown().await;
    assert_eq!(registered(jobs.clone()).await, by_new, "left alone");
    clock.set(utc(2026, 11, 27, 5, 30));
    start("2.0.0").await.unwrap().shutdown().await;
    assert_eq!(registered(jobs.clone()).await, utc(2026, 11, 27, 5, 30));
    // By default the release is the version of the crate that declares the jobs.
    let config = jobs::ServerConfig::default();
    assert_eq!(config.release(), env!("CARGO_PKG_VERSION"));
}
