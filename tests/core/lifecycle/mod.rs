//! A job's lifecycle, on each backend: it runs exactly once, retries with backoff,
//! waits for its time, is deduplicated, fails without retry when it cannot run, and is
//! released or rescued around a shutdown.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::support::{
    Backend, Probe, run_all_once, setup, start_time, tamper, test_server, wait_for_job,
    wait_for_state, wait_until,
};
use jobs::prelude::*;
use jobs::{JobQuery, JobServer, Jobs};

mod bad_input;
mod events;
mod results;
mod retry_policy;
mod sleep;

backend_tests!(
    runs_exactly_once,
    fails_twice_then_succeeds_after_the_backoff,
    exhausts_retries_and_keeps_every_error,
    scheduled_job_waits_for_its_time,
    delayed_job_waits_for_its_delay,
    dedupe_id_creates_one_job,
    two_thousand_jobs_on_fifty_workers_run_once_each,
    enqueue_many_inserts_in_one_call,
    deleted_job_never_runs,
    list_pages_by_state,
    shutdown_lets_running_jobs_finish,
    shutdown_releases_jobs_past_the_grace_period,
    orphaned_job_is_rescued_and_retried,
    orphaned_job_on_its_last_attempt_runs_again,
    requeue_of_a_deleted_job_waits_until_its_attempt_is_over,
);

#[job(display = "Record {label}")]
async fn record(State(probe): State<Probe>, ctx: JobContext, label: String) {
    let _run = probe.start(ctx.id());
    probe.note(label);
}

/// An error with a cause, like most real errors.
#[derive(Debug)]
struct ModelError {
    source: std::io::Error,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the model call failed")
    }
}

impl std::error::Error for ModelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

#[job(retries = 5)]
async fn flaky(
    State(probe): State<Probe>,
    ctx: JobContext,
    failures: u32,
) -> Result<(), ModelError> {
    let _run = probe.start(ctx.id());
    if ctx.attempt() <= failures {
        return Err(ModelError {
            source: std::io::Error::other(format!("overloaded (attempt {})", ctx.attempt())),
        });
    }
    Ok(())
}

#[job(retries = 2)]
async fn always_fails(State(probe): State<Probe>, ctx: JobContext) -> anyhow::Result<()> {
    let _run = probe.start(ctx.id());
    Err(anyhow::anyhow!("connection reset").context(format!("attempt {} failed", ctx.attempt())))
}

#[job(retries = 1)]
async fn panics(State(probe): State<Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
    PANIC_LINE.store(line!() + 1, std::sync::atomic::Ordering::Relaxed);
    panic!("boom in attempt {}", ctx.attempt());
}

/// The line of the `panic!` in [`panics`], for the failure to name.
static PANIC_LINE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[job]
async fn gated(State(probe): State<Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
    probe.gate.acquire().await.expect("gate open").forget();
}

/// [`gated`] without retries: an attempt that fails is its last.
#[job(retries = 0)]
async fn gated_once(State(probe): State<Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
    probe.gate.acquire().await.expect("gate open").forget();
}

#[job(retries = 0)]
async fn huge_error(size: usize) -> Result<(), String> {
    Err("x".repeat(size))
}

#[derive(Clone)]
struct Unregistered;

#[job]
async fn needs_other_state(State(_value): State<Arc<Unregistered>>) {}

async fn server(jobs: &Jobs, probe: &Probe) -> JobServer {
    test_server(jobs, probe)
        .worker_count(8)
        // The tests move the clock by hours: leases must outlast that.
        .server_timeout(Duration::from_secs(30 * 24 * 3600))
        .start()
        .await
        .expect("server starts")
}

async fn runs_exactly_once(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let server = server(&jobs, &probe).await;
    let id = jobs
        .enqueue(Record {
            label: "hello".into(),
        })
        .await
        .unwrap();
    let info = wait_for_state(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;

    assert_eq!(probe.runs(id), 1);
    assert_eq!(info.display_name, "Record hello");
    assert_eq!(info.attempt, 1);
    assert_eq!(info.payload, serde_json::json!({ "label": "hello" }));
    let states: Vec<_> = info.history.iter().map(|entry| entry.state).collect();
    assert_eq!(
        states,
        [
            JobState::Enqueued,
            JobState::Processing,
            JobState::Succeeded
        ]
    );
    assert!(
        info.history[1].server.is_some(),
        "the claim names its server"
    );
}

async fn fails_twice_then_succeeds_after_the_backoff(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let server = server(&jobs, &probe).await;
    let id = jobs.enqueue(Flaky { failures: 2 }).await.unwrap();

    for failure in 1..=2u32 {
        let info = wait_for_job(&jobs, id, "waits for a retry", |info| {
            info.state == JobState::Scheduled && info.attempt == failure
        })
        .await;
        let failed_at = info.history.last().unwrap().at;
        let delay = (info.run_at - failed_at).to_std().unwrap();
        assert_eq!(
            delay,
            jobs::backoff(failure, id, 0),
            "delay after failure {failure}"
        );
        let base = Duration::from_secs(3u64.pow(failure));
        assert!(delay >= base && delay <= base + base / 10, "{delay:?}");
        let error = info.history.last().unwrap().error.clone().unwrap();
        assert_eq!(error.message, "the model call failed");
        assert_eq!(error.sources, [format!("overloaded (attempt {failure})")]);

        // Not a moment before its time...
        clock.set(info.run_at - chrono::Duration::milliseconds(1));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(probe.runs(id), failure, "retried before its delay");
        // ...and at once when it comes.
        clock.set(info.run_at);
    }
    let info = wait_for_state(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(probe.runs(id), 3);
    assert_eq!(info.attempt, 3);
    assert_eq!(info.errors().count(), 2);
}

async fn exhausts_retries_and_keeps_every_error(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let server = server(&jobs, &probe).await;
    let id = jobs.enqueue(AlwaysFails {}).await.unwrap();
    for attempt in 1..=2u32 {
        let info = wait_for_job(&jobs, id, "waits for a retry", |info| {
            info.state == JobState::Scheduled && info.attempt == attempt
        })
        .await;
        clock.set(info.run_at);
    }
    let info = wait_for_state(&jobs, id, JobState::Failed).await;
    // Failed is final: no more runs, however long we wait.
    clock.advance(Duration::from_secs(365 * 24 * 3600));
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.shutdown().await;

    assert_eq!(probe.runs(id), 3, "retries = 2 means three attempts");
    assert_eq!(info.attempt, 3);
    let errors: Vec<_> = info.errors().cloned().collect();
    assert_eq!(errors.len(), 3);
    for (n, error) in errors.iter().enumerate() {
        assert_eq!(error.message, format!("attempt {} failed", n + 1));
        assert_eq!(error.sources, ["connection reset"]);
    }
    assert_eq!(
        info.last_error.as_deref(),
        Some("attempt 3 failed: connection reset")
    );
    assert_eq!(jobs.get(id).await.unwrap().state, JobState::Failed);
}

async fn scheduled_job_waits_for_its_time(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let server = server(&jobs, &probe).await;
    let tomorrow_at_10 = start_time() + chrono::Duration::hours(25);
    let id = jobs
        .enqueue(Record {
            label: "reminder".into(),
        })
        .at(tomorrow_at_10)
        .await
        .unwrap();
    assert_eq!(jobs.get(id).await.unwrap().state, JobState::Scheduled);
    assert_eq!(jobs.get(id).await.unwrap().run_at, tomorrow_at_10);

    clock.set(tomorrow_at_10 - chrono::Duration::seconds(1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(probe.runs(id), 0, "ran before its time");
    assert_eq!(jobs.get(id).await.unwrap().state, JobState::Scheduled);

    clock.set(tomorrow_at_10);
    wait_for_state(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(probe.runs(id), 1);
}

async fn delayed_job_waits_for_its_delay(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let server = server(&jobs, &probe).await;
    let id = jobs
        .enqueue(Record {
            label: "later".into(),
        })
        .after(Duration::from_secs(3600))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(3599));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(probe.runs(id), 0, "ran before its delay");
    clock.advance(Duration::from_secs(1));
    wait_for_state(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;
}

async fn dedupe_id_creates_one_job(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let key = JobId::from_key("weekly-report-2026-48");
    let first = jobs
        .enqueue(Record {
            label: "first".into(),
        })
        .id(key)
        .await
        .unwrap();
    let second = jobs
        .enqueue(Record {
            label: "second".into(),
        })
        .id(key)
        .await
        .unwrap();
    assert_eq!(first, key);
    assert_eq!(second, key);
    let info = jobs.get(key).await.unwrap();
    assert_eq!(
        info.payload["label"], "first",
        "the second enqueue changed nothing"
    );
    assert_eq!(info.history.len(), 1);

    let server = server(&jobs, &probe).await;
    wait_for_state(&jobs, key, JobState::Succeeded).await;
    // Once it ran, the same key still creates nothing.
    jobs.enqueue(Record {
        label: "third".into(),
    })
    .id(key)
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.shutdown().await;
    assert_eq!(probe.runs(key), 1);
    assert_eq!(probe.notes(), ["first"]);
    let page = jobs.list(JobQuery::default()).await.unwrap();
    assert_eq!(page.items.len(), 1);
}

async fn two_thousand_jobs_on_fifty_workers_run_once_each(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let ids = jobs
        .enqueue_many((0..2000).map(|n| Record {
            label: n.to_string(),
        }))
        .await
        .unwrap();
    run_all_once(&jobs, &probe, &ids, 50).await;
}

async fn enqueue_many_inserts_in_one_call(backend: Backend) {
    let (_db, _clock, jobs, _probe) = setup(backend).await;
    let ids = jobs
        .enqueue_many((0..1500).map(|n| Record {
            label: format!("batch {n}"),
        }))
        .await
        .unwrap();
    assert_eq!(ids.len(), 1500);
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 1500);
    assert_eq!(
        jobs.count_by_state().await.unwrap(),
        [(JobState::Enqueued, 1500)]
    );
    let info = jobs.get(ids[42]).await.unwrap();
    assert_eq!(info.display_name, "Record batch 42");
}

async fn deleted_job_never_runs(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let server = server(&jobs, &probe).await;
    let id = jobs
        .enqueue(Record {
            label: "cancelled".into(),
        })
        .after(Duration::from_secs(60))
        .await
        .unwrap();
    assert!(jobs.delete(id).await.unwrap());
    assert!(jobs.delete(id).await.unwrap(), "deleting twice is fine");
    assert!(!jobs.delete(JobId::new()).await.unwrap(), "no such job");
    clock.advance(Duration::from_secs(120));
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.shutdown().await;
    assert_eq!(probe.runs(id), 0);
    let info = jobs.get(id).await.unwrap();
    assert_eq!(info.state, JobState::Deleted);
    assert_eq!(info.history.last().unwrap().state, JobState::Deleted);
    assert!(matches!(
        jobs.get(JobId::new()).await,
        Err(jobs::Error::JobNotFound(_))
    ));
}

async fn list_pages_by_state(backend: Backend) {
    let (_db, _clock, jobs, _probe) = setup(backend).await;
    let now_ids = jobs
        .enqueue_many((0..5).map(|n| Record {
            label: n.to_string(),
        }))
        .await
        .unwrap();
    for n in 0..3 {
        jobs.enqueue(Record {
            label: format!("later {n}"),
        })
        .after(Duration::from_secs(60))
        .await
        .unwrap();
    }
    let first = jobs
        .list(JobQuery::state(JobState::Enqueued).limit(2))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let second = jobs
        .list(
            JobQuery::state(JobState::Enqueued)
                .limit(2)
                .after(first.next.unwrap()),
        )
        .await
        .unwrap();
    let third = jobs
        .list(
            JobQuery::state(JobState::Enqueued)
                .limit(2)
                .after(second.next.unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(third.items.len(), 1);
    assert_eq!(third.next, None);
    let mut listed: Vec<_> = [first, second, third]
        .into_iter()
        .flat_map(|page| page.items)
        .map(|job| job.id)
        .collect();
    listed.sort();
    let mut expected = now_ids.clone();
    expected.sort();
    assert_eq!(listed, expected);
    let scheduled = jobs
        .list(JobQuery::state(JobState::Scheduled))
        .await
        .unwrap();
    assert_eq!(scheduled.items.len(), 3);
    assert!(
        scheduled
            .items
            .iter()
            .all(|job| job.state == JobState::Scheduled)
    );
}

async fn shutdown_lets_running_jobs_finish(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let server = server(&jobs, &probe).await;
    let id = jobs.enqueue(Gated {}).await.unwrap();
    wait_for_state(&jobs, id, JobState::Processing).await;
    wait_until("the job runs", || async { probe.running() == 1 }).await;
    let opener = {
        let probe = probe.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            probe.gate.add_permits(1);
        })
    };
    server.shutdown().await;
    opener.await.unwrap();
    let info = jobs.get(id).await.unwrap();
    assert_eq!(info.state, JobState::Succeeded, "{:#?}", info.history);
}

async fn shutdown_releases_jobs_past_the_grace_period(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let server = test_server(&jobs, &probe)
        .shutdown_grace(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let id = jobs.enqueue(Gated {}).await.unwrap();
    wait_until("the job runs", || async { probe.running() == 1 }).await;
    server.shutdown().await;
    let info = jobs.get(id).await.unwrap();
    assert_eq!(
        info.state,
        JobState::Enqueued,
        "released for another server"
    );
    assert_eq!(info.attempt, 0, "a released attempt does not count");
    assert_eq!(info.owner, None);

    // Another server picks it up at once.
    probe.gate.add_permits(1);
    let next = server_with_id(&jobs, &probe).await;
    let info = wait_for_state(&jobs, id, JobState::Succeeded).await;
    next.shutdown().await;
    assert_eq!(info.attempt, 1);
    assert_eq!(probe.runs(id), 2);
}

async fn server_with_id(jobs: &Jobs, probe: &Probe) -> JobServer {
    server(jobs, probe).await
}

/// A server with a poll interval of 100 ms and a server timeout of 10 s.
async fn leased_server(jobs: &Jobs, probe: &Probe) -> JobServer {
    JobServer::builder(jobs.clone())
        .state(probe.clone())
        .poll_interval(Duration::from_millis(100))
        .server_timeout(Duration::from_secs(10))
        .start()
        .await
        .unwrap()
}

/// Enqueues `job` and lets a server start it, then drops that server without a
/// shutdown, like a process that died: the job stays claimed by it. → the job's id and
/// the dead server's id.
async fn run_on_a_dying_server<J: jobs::Job>(
    jobs: &Jobs,
    probe: &Probe,
    job: J,
) -> (JobId, String) {
    let dying = leased_server(jobs, probe).await;
    let dying_id = dying.id().to_owned();
    let id = jobs.enqueue(job).await.unwrap();
    wait_until("the job runs", || async { probe.running() == 1 }).await;
    drop(dying);
    wait_until("the dead server's job stops", || async {
        probe.running() == 0
    })
    .await;
    (id, dying_id)
}

async fn orphaned_job_is_rescued_and_retried(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let (id, dying_id) = run_on_a_dying_server(&jobs, &probe, Gated {}).await;
    assert_eq!(jobs.get(id).await.unwrap().state, JobState::Processing);

    probe.gate.add_permits(1);
    let rescuer = leased_server(&jobs, &probe).await;
    clock.advance(Duration::from_secs(11));
    // Rescued to run again at once, its attempt counted; the rescuer runs it.
    let info = wait_for_state(&jobs, id, JobState::Succeeded).await;
    rescuer.shutdown().await;
    assert_eq!(info.attempt, 2);
    let error = info.errors().next().unwrap();
    assert_eq!(
        error.message,
        format!(
            "orphaned: server {dying_id} stopped renewing its lease (the attempt may have \
             finished; what a crash loses runs again)"
        )
    );
    let rescue = info
        .history
        .iter()
        .find(|entry| entry.error.is_some())
        .unwrap();
    assert_eq!((rescue.state, rescue.attempt), (JobState::Scheduled, 1));
}

/// A rescue is not a failure of the job: what a dead server was running runs again,
/// even on its last attempt, and never ends `Failed` for it.
async fn orphaned_job_on_its_last_attempt_runs_again(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let (id, _) = run_on_a_dying_server(&jobs, &probe, GatedOnce {}).await;

    probe.gate.add_permits(1);
    let rescuer = leased_server(&jobs, &probe).await;
    clock.advance(Duration::from_secs(11));
    let info = wait_for_job(&jobs, id, "runs again", |info| {
        info.state != JobState::Processing || info.attempt > 1
    })
    .await;
    assert_ne!(info.state, JobState::Failed, "{:?}", info.history);
    let info = wait_for_state(&jobs, id, JobState::Succeeded).await;
    rescuer.shutdown().await;
    assert_eq!(info.attempt, 2);
    assert_eq!(probe.runs(id), 2);
    assert!(
        !info
            .history
            .iter()
            .any(|entry| entry.state == JobState::Failed)
    );
}

/// A job deleted while it runs is requeued only once its attempt is over: here its
/// server died, so nothing reports the attempt stopped, and the requeue waits for the
/// lease to run out.
async fn requeue_of_a_deleted_job_waits_until_its_attempt_is_over(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let (id, dying_id) = run_on_a_dying_server(&jobs, &probe, Gated {}).await;
    assert!(jobs.delete(id).await.unwrap());
    let error = jobs.requeue(id).await.unwrap_err();
    assert!(
        matches!(&error, jobs::Error::StillRunning { id: refused, server } if *refused == id && *server == dying_id),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!("job {id} is still stopping on server {dying_id}; requeue it when it has stopped")
    );
    assert_eq!(
        jobs.requeue_matching(&JobQuery::state(JobState::Deleted))
            .await
            .unwrap(),
        0
    );
    assert_eq!(jobs.get(id).await.unwrap().state, JobState::Deleted);

    // The lease ran out: the attempt is over for sure.
    clock.advance(Duration::from_secs(11));
    assert!(jobs.requeue(id).await.unwrap());
    probe.gate.add_permits(1);
    let server = JobServer::builder(jobs.clone())
        .state(probe.clone())
        .poll_interval(Duration::from_millis(100))
        .server_timeout(Duration::from_secs(10))
        .start()
        .await
        .unwrap();
    let info = wait_for_state(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!((info.attempt, probe.runs(id)), (1, 2));
}
