//! A stored schedule this server cannot read (a zone only a newer build knows, a cron
//! edited by hand) is marked in error and retried at the poll interval: the ticker
//! neither spins on it nor lets it hold up the other schedules.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use jobs::prelude::*;
use jobs::{JobQuery, Jobs};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use crate::support::{Backend, Probe, TestDb, execute, test_server, wait_until};

#[job(name = "recurring_errors.hourly")]
async fn hourly(State(probe): State<Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
}

#[job(name = "recurring_errors.morning")]
async fn morning(State(probe): State<Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
}

/// Counts the events that name the recurring job `bad`.
#[derive(Clone, Default)]
struct BadLines(Arc<AtomicUsize>);

struct NamesBad(bool);

impl Visit for NamesBad {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "id" && format!("{value:?}").trim_matches('"') == "bad" {
            self.0 = true;
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for BadLines {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut names = NamesBad(false);
        event.record(&mut names);
        if names.0 {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn utc(d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, h, mi, 0).unwrap()
}

async fn morning_runs(jobs: &Jobs) -> usize {
    let runs = jobs
        .list(JobQuery::default().name("recurring_errors.morning"))
        .await
        .unwrap()
        .items;
    runs.iter()
        .filter(|run| run.state == JobState::Succeeded)
        .count()
}

/// Stores `zone` on the schedule `id`, behind the library's back.
async fn store_zone(db: &TestDb, id: &str, zone: &str) {
    execute(
        db,
        "UPDATE jobs_recurring SET zone = $1 WHERE id = $2",
        &[zone, id],
    )
    .await;
}

async fn unreadable_schedule_backs_off_and_the_others_still_fire(backend: Backend) {
    let lines = BadLines::default();
    let subscriber = tracing_subscriber::registry().with(lines.clone());
    let _default = tracing::subscriber::set_default(subscriber);
    let db = TestDb::new(backend).await;
    let clock = jobs::ManualClock::new(utc(23, 6, 0));
    let jobs = db.jobs(&clock).await;
    let probe = Probe::new();
    // Due first, so that it leads every batch of due schedules.
    jobs.recurring()
        .cron("bad", "0 * * * *", Hourly {})
        .await
        .unwrap();
    jobs.recurring()
        .cron("morning", "0 8 * * *", Morning {})
        .await
        .unwrap();
    // A zone no build knows.
    store_zone(&db, "bad", "Mars/Olympus_Mons").await;
    let server = test_server(&jobs, &probe)
        .server_timeout(Duration::from_secs(365 * 24 * 3600))
        .delete_succeeded_after(Duration::from_secs(365 * 24 * 3600))
        .start()
        .await
        .unwrap();
    for day in 0..3 {
        clock.set(utc(23 + day, 8, 0));
        wait_until("the morning schedule fires", || async {
            morning_runs(&jobs).await == day as usize + 1
        })
        .await;
    }
    let logged = lines.0.load(Ordering::Relaxed);
    // Once when first seen, and again at most once per minute of the clock: the clock
    // moved by two days, in two steps.
    assert!(logged <= 3, "{logged} log lines about the bad schedule");
    wait_until("the bad schedule shows its error", || async {
        let bad = jobs.recurring().get("bad").await.unwrap();
        bad.error
            .as_deref()
            .is_some_and(|error| error.contains("Mars/Olympus_Mons"))
    })
    .await;
    let bad = jobs.recurring().get("bad").await.unwrap();
    assert!(bad.enabled, "left for a server that reads it");
    assert_eq!(bad.next_run_at, utc(23, 7, 0), "its ticks are not moved");

    // Readable again (a newer build took over, or a fix by hand): it fires, in the
    // clear, on this server too.
    store_zone(&db, "bad", "UTC").await;
    clock.set(utc(25, 9, 0));
    wait_until("the mended schedule fires, its error cleared", || async {
        let bad = jobs.recurring().get("bad").await.unwrap();
        bad.error.is_none() && bad.next_run_at == utc(25, 10, 0)
    })
    .await;
    server.shutdown().await;
}

// One thread, so that the subscriber set for the test sees the server's tasks.
#[tokio::test(flavor = "current_thread")]
async fn sqlite_unreadable_schedule_backs_off_and_the_others_still_fire() {
    unreadable_schedule_backs_off_and_the_others_still_fire(Backend::Sqlite).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "current_thread")]
async fn postgres_unreadable_schedule_backs_off_and_the_others_still_fire() {
    unreadable_schedule_backs_off_and_the_others_still_fire(Backend::Postgres).await;
}
