//! A server puts back the jobs it claimed ahead (the jobs running in its slots turned out
//! long) and the release fails: the database commits it but answers only after the
//! storage timeout, as when a network blip or a slow disk loses the answer to a commit
//! (the server must not start those jobs itself: another server may be running them
//! already), or the commit fails (the heartbeat puts them back). Either way every job
//! runs once, and no two executions of one job overlap.

use std::collections::HashMap;
use std::time::Duration;

use jobs::prelude::*;
use jobs::{JobServer, Jobs};
use sqlx::PgPool;

use crate::support::fault::{self, ExecutionLog, wait_within};
use crate::support::{Backend, TestDb};
use crate::{Work, assert_all_ended, assert_no_overlaps, executions_per_job, wait_all_succeeded};

/// Jobs claimed ahead behind the long ones, put back after a second.
const AHEAD: u32 = 16;
/// How long the database takes to answer the release's commit, and how long the
/// server waits for an answer.
const LATE_BY: Duration = Duration::from_millis(1_500);
const STORAGE_TIMEOUT: Duration = Duration::from_millis(500);

/// Runs first and quickly, so that the server then claims ahead.
#[job(priority = 20, display = "Quick")]
async fn quick(State(log): State<ExecutionLog>, ctx: JobContext) {
    let _run = log.start(ctx.id().as_uuid(), ctx.attempt(), "quick");
}

/// Fills a slot for `millis`: the jobs claimed ahead behind it wait.
#[job(priority = 10, display = "Hold {millis} ms")]
async fn hold(State(log): State<ExecutionLog>, ctx: JobContext, millis: u64) {
    let _run = log.start(ctx.id().as_uuid(), ctx.attempt(), "hold");
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

/// How the release's commit fails.
#[derive(Debug, Clone, Copy)]
enum Release {
    /// Committed, answered after [`LATE_BY`].
    AnsweredLate,
    /// Not committed: the commit fails (the first release only).
    Lost,
}

/// At the commit of every release (`Processing` back to `Enqueued`), records which jobs
/// it released, then does what `ANSWER` says.
const RELEASE_TRIGGER: &str = "
    CREATE TABLE released (job_id uuid NOT NULL);
    CREATE SEQUENCE releases;
    CREATE FUNCTION at_release() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO released (job_id) VALUES (NEW.id);
        ANSWER
        RETURN NULL;
    END $$;
    CREATE CONSTRAINT TRIGGER at_release AFTER UPDATE ON jobs_job
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
        WHEN (OLD.state = 'Processing' AND NEW.state = 'Enqueued')
        EXECUTE FUNCTION at_release();
";

/// Sleeps once per transaction.
const ANSWER_LATE: &str = "
    IF current_setting('test.answered_late', true) IS DISTINCT FROM 'yes' THEN
        PERFORM set_config('test.answered_late', 'yes', true);
        PERFORM pg_sleep(LATE_BY);
    END IF;";

/// Fails the first release's commit (a sequence is not rolled back).
const LOSE_FIRST: &str = "
    IF nextval('releases') = 1 THEN
        RAISE EXCEPTION 'the release is lost';
    END IF;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_answered_late_starts_none_of_its_jobs_here() {
    released_ahead_fails(Release::AnsweredLate).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_release_leaves_its_jobs_to_the_heartbeat() {
    released_ahead_fails(Release::Lost).await;
}

async fn released_ahead_fails(release: Release) {
    let _serial = fault::serial().await;
    let db = TestDb::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let log = ExecutionLog::open(dir.path().join("executions")).unwrap();
    let jobs = Jobs::connect(&db.url).await.unwrap();
    let pool = PgPool::connect(&db.url).await.unwrap();
    let answer = match release {
        Release::AnsweredLate => ANSWER_LATE.replace("LATE_BY", &LATE_BY.as_secs_f64().to_string()),
        Release::Lost => LOSE_FIRST.to_owned(),
    };
    sqlx::raw_sql(&RELEASE_TRIGGER.replace("ANSWER", &answer))
        .execute(&pool)
        .await
        .unwrap();

    // In claim order: a quick job, two that hold both slots for two seconds, and the
    // jobs the server claims ahead behind them. The long jobs end after the release
    // failed and before the server would try again.
    jobs.enqueue(Quick {}).await.unwrap();
    for _ in 0..2 {
        jobs.enqueue(Hold { millis: 2_000 }).await.unwrap();
    }
    jobs.enqueue_many((0..AHEAD).map(|n| Work { n, millis: 300 }))
        .await
        .unwrap();
    let total = u64::from(AHEAD) + 3;

    // Two slots. Its first claim starts the quick job and a long one; the quick one
    // ends at once, so the next claim takes the other long one and claims ahead. With a
    // poll interval of 10 s, jobs claimed ahead wait a second before they are put back,
    // and the heartbeat (which drops jobs the database no longer says are this
    // server's, and puts back those it says are but are not held) comes every 10 s.
    let first = JobServer::builder(jobs.clone())
        .state(log.clone())
        .worker_count(2)
        .poll_interval(Duration::from_secs(10))
        .server_timeout(Duration::from_secs(60))
        .storage_timeout(STORAGE_TIMEOUT)
        .start()
        .await
        .unwrap();
    wait_within(
        "both long jobs run, the others claimed ahead",
        Duration::from_secs(20),
        || async {
            let holds = log.runs().iter().filter(|run| run.kind == "hold").count();
            let processing = jobs
                .count_by_state()
                .await
                .unwrap()
                .into_iter()
                .find_map(|(state, n)| (state == JobState::Processing).then_some(n));
            holds == 2 && processing == Some(u64::from(AHEAD) + 2)
        },
    )
    .await;
    // Another server, to run what the first puts back. Both hold long leases: a lease
    // lost on a loaded machine would stop an attempt and run its job again.
    let second = JobServer::builder(jobs.clone())
        .state(log.clone())
        .worker_count(2)
        .poll_interval(crate::POLL_INTERVAL)
        .server_timeout(Duration::from_secs(60))
        .start()
        .await
        .unwrap();

    wait_all_succeeded(&jobs, total, Duration::from_secs(60), &log, &HashMap::new()).await;
    first.shutdown().await;
    second.shutdown().await;

    let released: i64 = sqlx::query_scalar("SELECT count(DISTINCT job_id) FROM released")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        released,
        i64::from(AHEAD),
        "the jobs claimed ahead were put back"
    );
    let runs = log.runs();
    assert_no_overlaps(&runs, &HashMap::new());
    assert_all_ended(&runs);
    let twice: Vec<_> = executions_per_job(&runs)
        .into_iter()
        .filter(|&(_, count)| count > 1)
        .flat_map(|(job, _)| runs.iter().filter(move |run| run.job == job))
        .collect();
    assert!(
        twice.is_empty(),
        "jobs ran more than once (the server that put them back started them too): \
         {twice:?}"
    );
    println!(
        "{release:?}: {} executions of {total} jobs; {released} put back",
        runs.len()
    );
}
