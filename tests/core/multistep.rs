//! Multi-step work on each backend: continuations, durable steps, progress and logs,
//! labels, priorities, timeouts, cancellation and per-queue limits.

use std::sync::Once;
use std::time::Duration;

use crate::support::{Backend, Probe, setup, wait_for_job, wait_for_state, wait_until};
use jobs::prelude::*;
use jobs::{JobQuery, JobServer, Jobs, LogLevel, Progress};

backend_tests!(
    chain_retries_only_the_failing_step,
    continuation_waits_for_a_failed_parent_and_runs_after_requeue,
    on_failure_runs_when_the_parent_fails_for_good,
    deleting_a_parent_deletes_its_continuations,
    durable_step_is_not_run_again_on_retry,
    progress_and_logs_are_kept_with_the_job,
    timeout_fails_the_attempt,
    deleting_a_running_job_stops_it,
    queue_limit_holds_and_other_queues_keep_flowing,
    higher_priority_runs_first,
    labels_are_stored_and_filterable,
);

/// A step of a pipeline: fails while its attempt is at most `failures`.
#[job(retries = 5, display = "Step {step}")]
async fn pipeline_step(
    State(probe): State<Probe>,
    ctx: JobContext,
    step: u32,
    failures: u32,
) -> Result<(), String> {
    let _run = probe.start(ctx.id());
    probe.note(format!("step {step} attempt {}", ctx.attempt()));
    if ctx.attempt() <= failures {
        return Err(format!("step {step} failed"));
    }
    Ok(())
}

#[job(retries = 2)]
async fn summarize_with_steps(State(probe): State<Probe>, ctx: JobContext) -> anyhow::Result<()> {
    let summary: String = ctx
        .step("summarize", || async {
            probe.note("model called");
            anyhow::Ok("a short summary".to_owned())
        })
        .await?;
    let again: String = ctx
        .step("summarize", || async {
            anyhow::Ok("never stored".to_owned())
        })
        .await?;
    assert_eq!(summary, again, "a finished step returns its stored value");
    probe.note(format!("attempt {} got {summary}", ctx.attempt()));
    if ctx.attempt() == 1 {
        anyhow::bail!("embedding service down");
    }
    Ok(())
}

/// Fails unless the probe's gate has a permit; never retried.
#[job(retries = 0)]
async fn charge(State(probe): State<Probe>) -> Result<(), String> {
    match probe.gate.try_acquire() {
        Ok(permit) => {
            permit.forget();
            Ok(())
        }
        Err(_) => Err("card declined".into()),
    }
}

#[job]
async fn reports_progress(ctx: JobContext) {
    ctx.log().info("calling the model");
    ctx.progress(1, 3).await;
    tracing::info!(document = 42, "summarized");
    ctx.progress(2, 3).await;
    ctx.log().warn("<b>slow</b> vector store");
    ctx.progress(3, 3).await;
}

#[job(timeout = "200ms", retries = 0)]
async fn hangs(State(probe): State<Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
    std::future::pending::<()>().await;
}

#[job]
async fn runs_until_cancelled(State(probe): State<Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
    ctx.cancelled().await;
    probe.note("saw cancellation");
    // Never reached past the next await: the server drops the future.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    probe.note("ran on after cancellation");
}

#[job(queue = "llm")]
async fn call_model(State(probe): State<Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
    let _llm = probe.inside("llm");
    probe.gate.acquire().await.expect("gate").forget();
}

#[job(queue = "email")]
async fn send_email(State(probe): State<Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
}

#[job(priority = 10, display = "urgent {n}")]
async fn urgent(State(probe): State<Probe>, n: u32) {
    probe.note(format!("urgent {n}"));
}

#[job(display = "routine {n}")]
async fn routine(State(probe): State<Probe>, n: u32) {
    probe.note(format!("routine {n}"));
}

#[job(labels = ["tenant-{tenant}", "llm"])]
async fn tenant_task(tenant: u32) {
    let _ = tenant;
}

async fn server(jobs: &Jobs, probe: &Probe) -> JobServer {
    JobServer::builder(jobs.clone())
        .state(probe.clone())
        .poll_interval(Duration::from_millis(100))
        .server_timeout(Duration::from_secs(24 * 3600))
        .start()
        .await
        .unwrap()
}

async fn chain_retries_only_the_failing_step(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let server = server(&jobs, &probe).await;
    let ids = jobs
        .enqueue(PipelineStep {
            step: 1,
            failures: 0,
        })
        .then(PipelineStep {
            step: 2,
            failures: 0,
        })
        .then(PipelineStep {
            step: 3,
            failures: 2,
        })
        .await
        .unwrap();
    assert_eq!(ids.len(), 3);
    for failure in 1..=2 {
        let info = wait_for_job(&jobs, ids[2], "waits for a retry", |info| {
            info.state == JobState::Scheduled && info.attempt == failure
        })
        .await;
        clock.set(info.run_at);
    }
    let last = wait_for_state(&jobs, ids[2], JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(probe.runs(ids[0]), 1, "step 1 ran once");
    assert_eq!(probe.runs(ids[1]), 1, "step 2 ran once");
    assert_eq!(probe.runs(ids[2]), 3);
    assert_eq!(last.parent_id, Some(ids[1]));
    assert_eq!(
        probe.notes(),
        [
            "step 1 attempt 1",
            "step 2 attempt 1",
            "step 3 attempt 1",
            "step 3 attempt 2",
            "step 3 attempt 3"
        ]
    );
    let second = jobs.get(ids[1]).await.unwrap();
    let states: Vec<_> = second.history.iter().map(|entry| entry.state).collect();
    assert_eq!(
        states,
        [
            JobState::Awaiting,
            JobState::Enqueued,
            JobState::Processing,
            JobState::Succeeded
        ]
    );
}

async fn continuation_waits_for_a_failed_parent_and_runs_after_requeue(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let server = server(&jobs, &probe).await;
    let ids = jobs
        .enqueue(Charge {})
        .then(PipelineStep {
            step: 2,
            failures: 0,
        })
        .await
        .unwrap();
    wait_for_state(&jobs, ids[0], JobState::Failed).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let child = jobs.get(ids[1]).await.unwrap();
    assert_eq!(
        child.state,
        JobState::Awaiting,
        "visible, awaiting its failed parent"
    );
    assert_eq!(child.parent_id, Some(ids[0]));

    probe.gate.add_permits(1);
    assert!(jobs.requeue(ids[0]).await.unwrap());
    wait_for_state(&jobs, ids[0], JobState::Succeeded).await;
    wait_for_state(&jobs, ids[1], JobState::Succeeded).await;
    server.shutdown().await;
}

async fn on_failure_runs_when_the_parent_fails_for_good(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let server = server(&jobs, &probe).await;
    let ids = jobs
        .enqueue(Hangs {})
        .then(PipelineStep {
            step: 2,
            failures: 0,
        })
        .on_failure(PipelineStep {
            step: 99,
            failures: 0,
        })
        .await
        .unwrap();
    // `on_failure` follows the job before it in the chain: step 2.
    let (parent, child, fallback) = (ids[0], ids[1], ids[2]);
    wait_for_state(&jobs, parent, JobState::Failed).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        jobs.get(child).await.unwrap().state,
        JobState::Awaiting,
        "waits on a failed parent"
    );
    assert_eq!(jobs.get(fallback).await.unwrap().state, JobState::Awaiting);
    assert_eq!(jobs.get(fallback).await.unwrap().parent_id, Some(child));

    // A chain whose first job fails for good runs that job's on_failure continuation.
    let ids = jobs
        .enqueue(Hangs {})
        .on_failure(PipelineStep {
            step: 7,
            failures: 0,
        })
        .then(PipelineStep {
            step: 8,
            failures: 0,
        })
        .await
        .unwrap();
    wait_for_state(&jobs, ids[1], JobState::Succeeded).await;
    assert_eq!(jobs.get(ids[2]).await.unwrap().state, JobState::Awaiting);
    server.shutdown().await;
    assert!(probe.notes().contains(&"step 7 attempt 1".to_owned()));
}

async fn deleting_a_parent_deletes_its_continuations(backend: Backend) {
    let (_db, _clock, jobs, _probe) = setup(backend).await;
    let ids = jobs
        .enqueue(PipelineStep {
            step: 1,
            failures: 0,
        })
        .after(Duration::from_secs(60))
        .then(PipelineStep {
            step: 2,
            failures: 0,
        })
        .then(PipelineStep {
            step: 3,
            failures: 0,
        })
        .await
        .unwrap();
    assert!(jobs.delete(ids[0]).await.unwrap());
    for id in &ids {
        assert_eq!(jobs.get(*id).await.unwrap().state, JobState::Deleted);
    }
    // The same chain under a dedupe id is stored once.
    let key = JobId::from_key("pipeline-42");
    let first = jobs
        .enqueue(PipelineStep {
            step: 1,
            failures: 0,
        })
        .id(key)
        .then(PipelineStep {
            step: 2,
            failures: 0,
        })
        .await
        .unwrap();
    let second = jobs
        .enqueue(PipelineStep {
            step: 1,
            failures: 0,
        })
        .id(key)
        .then(PipelineStep {
            step: 2,
            failures: 0,
        })
        .await
        .unwrap();
    assert_eq!(first, second);
    let page = jobs
        .list(JobQuery::state(JobState::Awaiting))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
}

async fn durable_step_is_not_run_again_on_retry(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let server = server(&jobs, &probe).await;
    let id = jobs.enqueue(SummarizeWithSteps {}).await.unwrap();
    let info = wait_for_job(&jobs, id, "waits for a retry", |info| {
        info.state == JobState::Scheduled
    })
    .await;
    clock.set(info.run_at);
    wait_for_state(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(
        probe.notes(),
        [
            "model called",
            "attempt 1 got a short summary",
            "attempt 2 got a short summary"
        ]
    );
}

static TRACING: Once = Once::new();

async fn progress_and_logs_are_kept_with_the_job(backend: Backend) {
    TRACING.call_once(|| {
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = tracing_subscriber::registry().with(jobs::JobLogLayer);
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
    });
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let server = server(&jobs, &probe).await;
    let id = jobs.enqueue(ReportsProgress {}).await.unwrap();
    let info = wait_for_state(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(info.progress, Some(Progress { done: 3, total: 3 }));
    let lines: Vec<_> = info
        .logs
        .iter()
        .map(|line| (line.level, line.message.as_str(), line.attempt))
        .collect();
    assert_eq!(
        lines,
        [
            (LogLevel::Info, "calling the model", 1),
            (LogLevel::Info, "summarized document=42", 1),
            (LogLevel::Warn, "<b>slow</b> vector store", 1),
        ]
    );
}

async fn timeout_fails_the_attempt(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let server = server(&jobs, &probe).await;
    let id = jobs.enqueue(Hangs {}).await.unwrap();
    let info = wait_for_state(&jobs, id, JobState::Failed).await;
    server.shutdown().await;
    assert_eq!(
        info.errors().next().unwrap().message,
        "timed out after 200ms"
    );
    assert_eq!(probe.running(), 0, "the attempt was dropped");
}

async fn deleting_a_running_job_stops_it(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let server = server(&jobs, &probe).await;
    let id = jobs.enqueue(RunsUntilCancelled {}).await.unwrap();
    wait_until("the job runs", || async { probe.running() == 1 }).await;
    assert!(jobs.delete(id).await.unwrap());
    wait_until("the job stops", || async { probe.running() == 0 }).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.shutdown().await;
    let info = jobs.get(id).await.unwrap();
    assert_eq!(info.state, JobState::Deleted, "{:#?}", info.history);
    assert!(
        !probe
            .notes()
            .contains(&"ran on after cancellation".to_owned())
    );
}

async fn queue_limit_holds_and_other_queues_keep_flowing(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let server = JobServer::builder(jobs.clone())
        .state(probe.clone())
        .worker_count(10)
        .queue_limit("llm", 3)
        .poll_interval(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    jobs.enqueue_many((0..30).map(|_| CallModel {}))
        .await
        .unwrap();
    let emails = jobs
        .enqueue_many((0..30).map(|_| SendEmail {}))
        .await
        .unwrap();
    // While every model call is blocked, the email queue still drains.
    for id in &emails {
        wait_for_state(&jobs, *id, JobState::Succeeded).await;
    }
    assert_eq!(probe.running_in("llm"), 3, "exactly the limit runs");
    probe.gate.add_permits(30);
    wait_until("every model call finishes", || async {
        jobs.count_by_state().await.unwrap() == [(JobState::Succeeded, 60)]
    })
    .await;
    server.shutdown().await;
    assert_eq!(
        probe.max_of("llm"),
        3,
        "never more than 3 model calls at once"
    );
}

async fn higher_priority_runs_first(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    jobs.enqueue_many((0..3).map(|n| Routine { n }))
        .await
        .unwrap();
    jobs.enqueue(Urgent { n: 1 }).await.unwrap();
    let server = JobServer::builder(jobs.clone())
        .state(probe.clone())
        .worker_count(1)
        .poll_interval(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    wait_until("all ran", || async { probe.notes().len() == 4 }).await;
    server.shutdown().await;
    assert_eq!(probe.notes()[0], "urgent 1");
    assert_eq!(
        jobs.get(
            jobs.list(JobQuery::default().search("urgent"))
                .await
                .unwrap()
                .items[0]
                .id
        )
        .await
        .unwrap()
        .priority,
        10
    );
}

async fn labels_are_stored_and_filterable(backend: Backend) {
    let (_db, _clock, jobs, _probe) = setup(backend).await;
    let seven = jobs.enqueue(TenantTask { tenant: 7 }).await.unwrap();
    jobs.enqueue(TenantTask { tenant: 8 }).await.unwrap();
    assert_eq!(jobs.get(seven).await.unwrap().labels, ["tenant-7", "llm"]);
    let page = jobs
        .list(JobQuery::default().label("tenant-7"))
        .await
        .unwrap();
    assert_eq!(
        page.items.iter().map(|job| job.id).collect::<Vec<_>>(),
        [seven]
    );
    assert_eq!(page.items[0].labels, ["tenant-7", "llm"]);
    assert_eq!(
        jobs.list(JobQuery::default().label("llm"))
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    assert!(
        jobs.list(JobQuery::default().label("tenant-"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}
