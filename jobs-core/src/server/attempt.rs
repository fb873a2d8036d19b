//! One attempt of a job: the worker task that runs it (and the jobs claimed ahead after
//! it), what stops it, the fn call with its timeout and panic catch, and what its end
//! leads to (success, a retry, failure for good, a sleep).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::metrics::AttemptOutcome;
use super::worker::short;
use super::{Attempt, Held, Shared, Stop, Unwritten, Write, panics, stop_reason};
use crate::job::context::{CURRENT_JOB, Suspend, Suspension};
use crate::job::registry;
use crate::job::retry;
use crate::storage::{
    AdminStore, ClaimedJob, Completion, Fence, LifecycleStore, Outcome, RunningStore, ServerStore,
};
use crate::{Failure, Invocation, JobContext, JobId};

/// Starts a worker task on `permit` with `job`, counted by [`start`]; when the job
/// ends, the task goes on with jobs claimed ahead while there are any, then frees its
/// slot.
pub(super) fn spawn_attempt(
    shared: &Arc<Shared>,
    job: ClaimedJob,
    started: Started,
    permit: OwnedSemaphorePermit,
) {
    let shared = shared.clone();
    let (mut job, mut started) = (job, started);
    shared.clone().tracker.spawn(async move {
        let mut from_ready = false;
        loop {
            run(&shared, job, started, from_ready).await;
            from_ready = true;
            match shared.take_ready() {
                Some((next, next_started)) => {
                    job = next;
                    started = next_started;
                }
                None => break,
            }
        }
        drop(permit);
        shared.slot_freed.notify_one();
    });
}

/// What stops an attempt counted by [`start`], and why it was stopped.
pub(super) struct Started {
    cancel: CancellationToken,
    why: Arc<AtomicU8>,
}

/// Counts a job as running, held under `held` (the caller's lock, so that the job is
/// never missing from the held set while it moves); → what stops it: when it is
/// deleted, when its lease is lost or the server fences itself, and with every job at
/// shutdown past the grace period.
pub(super) fn start(shared: &Shared, held: &mut Held, job: &ClaimedJob) -> Started {
    shared.running.fetch_add(1, Ordering::Relaxed);
    *shared.queue_counts().entry(job.queue.clone()).or_default() += 1;
    let waited = (shared.jobs.now() - job.run_at)
        .to_std()
        .unwrap_or_default();
    shared
        .metrics
        .attempt_started(&job.name, &job.queue, waited);
    let cancel = shared.stop_jobs.child_token();
    let why = Arc::new(AtomicU8::new(0));
    held.running.insert(
        job.id,
        Attempt {
            token: job.token,
            cancel: cancel.clone(),
            why: why.clone(),
        },
    );
    Started { cancel, why }
}

/// Runs one attempt of a job counted by [`start`] and sends its result to the completer.
/// A job claimed ahead (`from_ready`) that was deleted meanwhile never starts.
async fn run(shared: &Shared, job: ClaimedJob, started: Started, from_ready: bool) {
    let Started { cancel, why } = started;
    let began = Instant::now();
    let dropped = from_ready && deleted_before_start(shared, job.id).await;
    if dropped {
        tracing::info!(job = %job.id, "job deleted while it waited claimed ahead; it will not start");
        if let Some(attempt) = shared.held().running.get(&job.id) {
            attempt.stop(Stop::Deleted);
        }
    }
    // A stopped attempt records nothing: a deleted job stays deleted, a job stopped at
    // shutdown is released for another server, and one stopped because its lease is
    // lost (or may be) belongs to whoever rescues it.
    // Every attempt runs in a `job.run` span (what the job's own `tracing` events
    // nest under), its outcome recorded when it ends.
    let span = tracing::info_span!(
        "job.run",
        job.id = %job.id,
        job.name = %job.name,
        job.queue = %job.queue,
        job.attempt = job.attempt,
        outcome = tracing::field::Empty,
    );
    // A child of the span that enqueued the job, in another process or not (see
    // `crate::telemetry` and ARCHITECTURE.md).
    crate::telemetry::continue_trace(&span, job.trace_context.as_deref());
    let suspend = Arc::new(Suspend::default());
    let result = if dropped || cancel.is_cancelled() {
        None
    } else {
        tokio::select! {
            result = attempt(shared, &job, cancel.clone(), suspend.clone())
                .instrument(span.clone()) => Some(Ended::Ran(result)),
            suspension = suspend.requested() => Some(Ended::Sleeps(suspension)),
            () = cancel.cancelled() => None,
        }
    };
    span.record(
        "outcome",
        match &result {
            None => "stopped",
            Some(Ended::Ran(Ok(_))) => "succeeded",
            Some(Ended::Ran(Err(_))) => "failed",
            Some(Ended::Sleeps { .. }) => "slept",
        },
    );
    match result {
        Some(ended) => {
            let took = began.elapsed();
            let at = shared.jobs.now();
            let (outcome, value, counted) = match ended {
                Ended::Ran(Err(failure)) if failure.is_undecodable() => {
                    match put_back_for_another_build(shared, &job, &failure).await {
                        Some(put_back) => (put_back, None, AttemptOutcome::PutBack),
                        None => (Outcome::Failed { failure }, None, AttemptOutcome::Failed),
                    }
                }
                Ended::Ran(result) => {
                    let (result, value) = match result {
                        Ok(value) => (Ok(()), value),
                        Err(failure) => (Err(failure), None),
                    };
                    let outcome = outcome(shared, &job, result);
                    let counted = match &outcome {
                        Outcome::Succeeded => AttemptOutcome::Succeeded,
                        Outcome::Retry { .. } => AttemptOutcome::Retried,
                        _ => AttemptOutcome::Failed,
                    };
                    (outcome, value, counted)
                }
                Ended::Sleeps(Suspension { until, note, wait }) => (
                    Outcome::Sleeping { until, note, wait },
                    None,
                    AttemptOutcome::Slept,
                ),
            };
            shared
                .metrics
                .attempt_finished(&job.name, &job.queue, counted, took);
            let completion = Completion {
                id: job.id,
                owner: shared.row.id.clone(),
                attempt: job.attempt,
                token: job.token,
                outcome,
                result: value,
                at,
            };
            shared.unrecorded.fetch_add(1, Ordering::Relaxed);
            {
                // Held until written: its lease is renewed while it waits.
                let mut held = shared.held();
                held.running.remove(&job.id);
                held.unwritten.insert(
                    job.id,
                    Unwritten {
                        token: job.token,
                        queue: job.queue.clone(),
                    },
                );
            }
            // The completer outlives every job task, so the channel is open.
            let _ = shared.writes.send(Write::Completion(completion));
        }
        None => {
            shared.held().running.remove(&job.id);
            if !dropped {
                shared.metrics.attempt_finished(
                    &job.name,
                    &job.queue,
                    AttemptOutcome::Stopped,
                    began.elapsed(),
                );
            }
            match stop_reason(&why) {
                Stop::Deleted => {
                    let _ = shared.writes.send(Write::Stopped(Fence {
                        id: job.id,
                        token: job.token,
                    }));
                }
                Stop::Shutdown => shared.shutdown_stopped().push(job.fence()),
                Stop::Fenced | Stop::Lost => {}
            }
        }
    }
    if let Some(count) = shared.queue_counts().get_mut(&job.queue) {
        *count -= 1;
    }
    shared.running.fetch_sub(1, Ordering::Relaxed);
    if short(shared, began.elapsed()) {
        shared.quick.fetch_add(1, Ordering::Relaxed);
    }
    shared.ended.fetch_add(1, Ordering::Relaxed);
}

/// How an attempt that was not stopped ended: its fn returned, or the job went to sleep
/// (or to wait for an event).
enum Ended {
    Ran(Result<Option<String>, Failure>),
    Sleeps(Suspension),
}

/// How long a job whose payload this build cannot decode waits before it is due again,
/// in poll intervals: long enough for a server of the build that can to claim it first.
const PUT_BACK_POLLS: u32 = 5;

/// A payload that does not decode for this build, while a live server of another build
/// runs the job's name with data of another shape (a rolling deploy: an old server
/// claimed a job a new one enqueued, or the other way round): the job is put back,
/// uncharged, due again after [`PUT_BACK_POLLS`] poll intervals, with the decode error
/// as the history row's message; → that outcome. `None` when no live server's build
/// differs, or when the job is older than `fail_unserved_after`: it fails, as any
/// payload that does not decode. A failed read of the servers or the job puts it back
/// (its age bounds the put-backs).
async fn put_back_for_another_build(
    shared: &Shared,
    job: &ClaimedJob,
    failure: &Failure,
) -> Option<Outcome> {
    let shape = registry().get(job.name.as_str())?.shape_setting();
    let now = shared.jobs.now();
    let timeout =
        chrono::Duration::from_std(shared.config.server_timeout).unwrap_or(chrono::Duration::MAX);
    let alive_after = now.checked_sub_signed(timeout).unwrap_or(now);
    let other = shared
        .storage
        .servers_other_shape(&job.name, shape, &shared.row.id, alive_after);
    match shared.bounded(other).await {
        Ok(false) => return None,
        Ok(true) => {}
        Err(error) => {
            tracing::warn!(%error, job = %job.id, "could not read which builds the servers run; putting the job back");
        }
    }
    let limit = chrono::Duration::from_std(shared.config.fail_unserved_after)
        .unwrap_or(chrono::Duration::MAX);
    if let Ok(Some(info)) = shared.bounded(shared.storage.job_get(job.id)).await
        && now.signed_duration_since(info.created_at) > limit
    {
        return None;
    }
    let wait = chrono::Duration::from_std(shared.config.poll_interval * PUT_BACK_POLLS)
        .unwrap_or(chrono::Duration::MAX);
    tracing::info!(job = %job.id, name = %job.name, "payload does not decode for this build; put back for a server of another build");
    Some(Outcome::Sleeping {
        until: now.checked_add_signed(wait).unwrap_or(now),
        note: format!(
            "put back for a server of another build: {}",
            failure.message()
        ),
        wait: None,
    })
}

/// Whether a job about to start after waiting claimed ahead was deleted by a delete
/// that the deleted-watcher has not covered yet (it drops such jobs itself otherwise).
async fn deleted_before_start(shared: &Shared, id: JobId) -> bool {
    if !shared.deletions.pending() {
        return false;
    }
    match shared
        .bounded(shared.storage.jobs_deleted_among(&[id]))
        .await
    {
        Ok(gone) => !gone.is_empty(),
        Err(error) => {
            tracing::warn!(%error, job = %id, "could not check whether a job was deleted; starting it");
            false
        }
    }
}

/// Runs one attempt: finds the job's fn, runs it within its timeout, and turns a panic
/// into a failure.
async fn attempt(
    shared: &Shared,
    job: &ClaimedJob,
    cancel: CancellationToken,
    suspend: Arc<Suspend>,
) -> Result<Option<String>, Failure> {
    let Some(descriptor) = registry().get(job.name.as_str()) else {
        return Err(Failure::permanent(format!(
            "job `{}` is not registered in this binary: no #[job] fn has this name \
             (renamed or removed? pin names with #[job(name = \"…\")])",
            job.name
        )));
    };
    // The job's own token, a child of the attempt's: a timeout cancels it (so helper
    // tasks watching `ctx.cancelled()` stop too) while the attempt goes on to record
    // the timeout as its failure.
    let cancelled = cancel.child_token();
    let context = JobContext::new(
        job.fence(),
        job.name.clone(),
        job.attempt,
        shared.jobs.clone(),
        shared.writes.clone(),
        cancelled.clone(),
        suspend,
    );
    let mut invocation =
        Invocation::new(job.payload.clone(), context.clone(), shared.state.clone());
    if descriptor.reads_parent_setting() {
        // Read for each attempt, so a retry gets what the parent stored without
        // running it again; a failed read is a failed attempt, retried.
        let parent = shared
            .bounded(shared.storage.job_parent_result(job.id))
            .await
            .map_err(|error| {
                Failure::new(format!(
                    "could not read the result of the job before this one: {error}"
                ))
            })?;
        invocation = invocation.with_parent(parent);
    }
    if descriptor.reads_batch_setting() {
        // Read for each attempt like the parent's result, and retried the same way.
        let members = shared
            .bounded(crate::client::batch::fan_in_members(
                &shared.storage,
                job.id,
            ))
            .await
            .map_err(|error| {
                Failure::new(format!("could not read the results of the batch: {error}"))
            })?;
        invocation = invocation.with_batch(members);
    }
    let run = AssertUnwindSafe(async move { descriptor.run(invocation).await }).catch_unwind();
    let run = CURRENT_JOB.scope(context, run);
    let run = panics::noted_in(shared.config.capture_backtraces, run);
    let finished = match descriptor.timeout_setting() {
        Some(limit) => match tokio::time::timeout(limit, run).await {
            Ok(finished) => finished,
            Err(_) => {
                cancelled.cancel();
                return Err(Failure::new(format!("timed out after {}", human(limit))));
            }
        },
        None => run.await,
    };
    match finished {
        Ok(result) => result,
        Err(panic) => Err(panics::failure(&*panic)),
    }
}

/// A duration as a person writes it: `5m`, `30s`, `1500ms`.
fn human(duration: Duration) -> String {
    let millis = duration.as_millis();
    match millis {
        _ if millis.is_multiple_of(3_600_000) => format!("{}h", millis / 3_600_000),
        _ if millis.is_multiple_of(60_000) => format!("{}m", millis / 60_000),
        _ if millis.is_multiple_of(1000) => format!("{}s", millis / 1000),
        _ => format!("{millis}ms"),
    }
}

/// What a finished attempt leads to: success, a retry (when the failure said, else
/// after the job's backoff), or failure for good.
pub(super) fn outcome(shared: &Shared, job: &ClaimedJob, result: Result<(), Failure>) -> Outcome {
    let failure = match result {
        Ok(()) => return Outcome::Succeeded,
        Err(failure) => failure,
    };
    let retries = job.max_retries.unwrap_or(shared.config.default_retries);
    if failure.is_permanent() || job.attempt > retries {
        return Outcome::Failed { failure };
    }
    let delay = failure.retry_after().unwrap_or_else(|| {
        let policy = registry()
            .get(job.name.as_str())
            .and_then(|descriptor| descriptor.backoff_setting());
        retry::delay(policy, job.attempt, job.id, shared.config.backoff_seed)
    });
    let now = shared.jobs.now();
    let at = chrono::Duration::from_std(delay)
        .ok()
        .and_then(|delay| now.checked_add_signed(delay))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    Outcome::Retry { at, failure }
}
