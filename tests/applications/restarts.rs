//! `crm` declares `crm-tick` and `crm-leap-day`; `billing` declares `billing-tick` and
//! `billing-leap-day` (`only_recurring`, as two builds would). Each is restarted five
//! times, by turns in a rolling way (the new process starts before the old one stops)
//! and with downtime. Throughout, all four schedules stay enabled, and every second
//! from the first tick of each `*-tick` schedule to its last ran exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs::prelude::*;
use jobs::{JobId, JobServer, Jobs};
use sqlx::PgPool;

use crate::support::process::{self, Child};
use crate::support::{Backend, TestDb, wait_until};

/// Long enough for a loaded machine: the processes' leases are not what is tested.
const SERVER_TIMEOUT: Duration = Duration::from_secs(10);
const SCHEDULES: [&str; 4] = [
    "crm-tick",
    "crm-leap-day",
    "billing-tick",
    "billing-leap-day",
];

#[recurring(id = "crm-tick", every = "1s", missed = "catch_up(600)")]
async fn crm_tick(State(pool): State<PgPool>, ctx: JobContext) -> Result<(), sqlx::Error> {
    ran(&pool, "crm-tick", ctx.id()).await
}

/// Its tick (00:00 on 29 February) never comes in a test: it is there to be disabled
/// by mistake.
#[recurring(id = "crm-leap-day", cron = "0 0 29 2 *")]
async fn crm_leap_day() {}

#[recurring(id = "billing-tick", every = "1s", missed = "catch_up(600)")]
async fn billing_tick(State(pool): State<PgPool>, ctx: JobContext) -> Result<(), sqlx::Error> {
    ran(&pool, "billing-tick", ctx.id()).await
}

#[recurring(id = "billing-leap-day", cron = "0 0 29 2 *")]
async fn billing_leap_day() {}

async fn ran(pool: &PgPool, schedule: &str, id: JobId) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO ran (schedule, job) VALUES ($1, $2)")
        .bind(schedule)
        .bind(id.to_string())
        .execute(pool)
        .await?;
    Ok(())
}

/// A node of `crm` or `billing`, as its role says: the same binary, deployed as two
/// applications that each run and declare their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child() {
    let Some(application) = process::role() else {
        return;
    };
    let url = process::database_url();
    let jobs = Jobs::connect(&url).await.expect("child connects");
    let pool = PgPool::connect(&url).await.expect("job pool");
    let server = JobServer::builder(jobs)
        .state(pool)
        .application(application.as_str())
        .release("1.0.0")
        .only_jobs([
            format!("{}::{application}_tick", module_path!()),
            format!("{}::{application}_leap_day", module_path!()),
        ])
        .only_recurring([
            format!("{application}-tick"),
            format!("{application}-leap-day"),
        ])
        .poll_interval(Duration::from_millis(200))
        .server_timeout(SERVER_TIMEOUT);
    process::serve_until_parent_gone(server).await;
}

/// When `application` last registered its recurring jobs.
async fn registered_at(pool: &PgPool, application: &str) -> Option<DateTime<Utc>> {
    sqlx::query_scalar("SELECT registered_at FROM jobs_application WHERE name = $1")
        .bind(application)
        .fetch_optional(pool)
        .await
        .unwrap()
}

async fn runs(pool: &PgPool, schedule: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM ran WHERE schedule = $1")
        .bind(schedule)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn assert_all_enabled(jobs: &Jobs, when: &str) {
    for id in SCHEDULES {
        let schedule = jobs.recurring().get(id).await.unwrap();
        assert!(
            schedule.enabled,
            "{id} is disabled {when}: {:?}",
            schedule.disabled_reason
        );
    }
}

/// Starts `application` and waits until it registered its recurring jobs and the
/// schedule it owns has run once more.
async fn start(db: &TestDb, pool: &PgPool, application: &str) -> Child {
    let registered = registered_at(pool, application).await;
    let before = runs(pool, &format!("{application}-tick")).await;
    let child = Child::spawn(module_path!(), application, &db.url, &[]);
    wait_until(&format!("{application} registers"), || async {
        registered_at(pool, application).await > registered
    })
    .await;
    wait_until(&format!("{application} ticks again"), || async {
        runs(pool, &format!("{application}-tick")).await > before
    })
    .await;
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_applications_restarted_five_times_keep_every_schedule_and_run_each_tick_once() {
    let db = TestDb::new(Backend::Postgres).await;
    let jobs = Jobs::connect(&db.url).await.unwrap();
    let pool = PgPool::connect(&db.url).await.unwrap();
    sqlx::query("CREATE TABLE ran (schedule text NOT NULL, job text NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let mut nodes = BTreeMap::new();
    for application in ["crm", "billing"] {
        nodes.insert(application, start(&db, &pool, application).await);
    }
    assert_all_enabled(&jobs, "after both started").await;

    for restart in 1..=5 {
        for application in ["crm", "billing"] {
            let old = nodes.remove(application).unwrap();
            let new = if restart % 2 == 1 {
                // Rolling: the new process registers while the old one still runs.
                let new = start(&db, &pool, application).await;
                old.stop(Duration::from_secs(20)).await;
                new
            } else {
                old.stop(Duration::from_secs(20)).await;
                start(&db, &pool, application).await
            };
            nodes.insert(application, new);
            assert_all_enabled(&jobs, &format!("after {application}'s restart {restart}")).await;
        }
    }
    for (_, node) in nodes {
        node.stop(Duration::from_secs(20)).await;
    }

    for schedule in ["crm-tick", "billing-tick"] {
        let ran: Vec<String> = sqlx::query_scalar("SELECT job FROM ran WHERE schedule = $1")
            .bind(schedule)
            .fetch_all(&pool)
            .await
            .unwrap();
        let mut ticks: BTreeMap<DateTime<Utc>, usize> = BTreeMap::new();
        for job in &ran {
            let info = jobs.get(job.parse().unwrap()).await.unwrap();
            *ticks.entry(info.run_at).or_default() += 1;
        }
        let twice: Vec<_> = ticks.iter().filter(|(_, runs)| **runs > 1).collect();
        assert!(
            twice.is_empty(),
            "{schedule}: ticks that ran twice: {twice:?}"
        );
        let times: Vec<_> = ticks.keys().collect();
        let gaps: Vec<_> = times
            .windows(2)
            .filter(|pair| *pair[1] - *pair[0] != chrono::TimeDelta::seconds(1))
            .collect();
        assert!(
            gaps.is_empty(),
            "{schedule}: ticks missing between {gaps:?}"
        );
        println!(
            "{schedule}: {} ticks, each run once, from {} to {}",
            times.len(),
            times[0],
            times[times.len() - 1]
        );
    }
    assert_all_enabled(&jobs, "at the end").await;
    pool.close().await;
}
