//! The claim loop and the task that runs one attempt.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::OwnedSemaphorePermit;

use super::Shared;
use crate::job::registry;
use crate::storage::{ClaimRequest, ClaimedJob, Completion, Outcome, Storage};
use crate::{Failure, Invocation, JobContext, retry};

pub(super) async fn claim_loop(shared: Arc<Shared>) {
    let clock = shared.jobs.clock().clone();
    let mut enqueued = shared.jobs.subscribe_enqueued();
    let mut remote = shared.storage.wakeups();
    let mut failures = 0u32;
    loop {
        // Subscribed before reading the time, so a move of a manual clock during this
        // round wakes the next wait instead of being missed.
        let moved = clock.moved();
        if shared.stop_claiming.is_cancelled() {
            return;
        }
        let free = shared.slots.available_permits();
        if free > 0 {
            let now = clock.now();
            let lease = chrono::Duration::from_std(shared.config.server_timeout)
                .unwrap_or(chrono::Duration::MAX);
            let request = ClaimRequest {
                owner: &shared.row.id,
                limit: u32::try_from(free).unwrap_or(u32::MAX),
                now,
                lease_until: now + lease,
            };
            match shared.storage.jobs_claim(request).await {
                Ok(claimed) => {
                    failures = 0;
                    let full = claimed.len() == free;
                    for job in claimed {
                        let permit = shared
                            .slots
                            .clone()
                            .try_acquire_owned()
                            .expect("only the claim loop takes slots");
                        spawn_attempt(&shared, job, permit);
                    }
                    if full {
                        // There may be more waiting: claim again once a slot frees up.
                        continue;
                    }
                }
                Err(error) => {
                    failures += 1;
                    let delay = outage_delay(failures, shared.config.poll_interval);
                    tracing::warn!(%error, retry_in = ?delay, "could not claim jobs");
                    tokio::select! {
                        () = shared.stop_claiming.cancelled() => return,
                        () = tokio::time::sleep(delay) => continue,
                    }
                }
            }
        }
        let wait = if free == 0 {
            shared.config.poll_interval
        } else {
            next_wait(&shared).await
        };
        tokio::select! {
            () = shared.stop_claiming.cancelled() => return,
            _ = enqueued.changed() => {}
            Ok(()) = changed(&mut remote) => {}
            () = moved => {}
            () = shared.slot_freed.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Resolves when another process signals new jobs; never without such signals.
async fn changed(remote: &mut Option<tokio::sync::watch::Receiver<u64>>) -> Result<(), ()> {
    match remote {
        Some(receiver) => receiver.changed().await.map_err(|_| ()),
        None => std::future::pending().await,
    }
}

/// How long to sleep when idle: until the next scheduled job is due, at most a poll
/// interval.
async fn next_wait(shared: &Shared) -> Duration {
    let poll = shared.config.poll_interval;
    match shared.storage.jobs_next_run_at().await {
        Ok(Some(due)) => (due - shared.jobs.now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .clamp(Duration::from_millis(1), poll),
        Ok(None) | Err(_) => poll,
    }
}

/// Back-off while the database is unreachable: doubling from 100 ms up to the poll interval.
fn outage_delay(failures: u32, poll: Duration) -> Duration {
    (Duration::from_millis(100) * 2u32.saturating_pow(failures.min(16)))
        .min(poll.max(Duration::from_millis(100)))
}

fn spawn_attempt(shared: &Arc<Shared>, job: ClaimedJob, permit: OwnedSemaphorePermit) {
    let shared_for_task = shared.clone();
    shared.running.fetch_add(1, Ordering::Relaxed);
    shared.tracker.spawn(async move {
        let shared = shared_for_task;
        let result = tokio::select! {
            result = attempt(&shared, &job) => Some(result),
            () = shared.stop_jobs.cancelled() => None,
        };
        if let Some(result) = result {
            let at = shared.jobs.now();
            let outcome = outcome(&shared, &job, result);
            let completion = Completion {
                id: job.id,
                owner: shared.row.id.clone(),
                attempt: job.attempt,
                outcome,
                at,
            };
            // The completer outlives every job task, so the channel is open.
            let _ = shared.completions.send(completion);
        }
        shared.running.fetch_sub(1, Ordering::Relaxed);
        drop(permit);
        shared.slot_freed.notify_one();
    });
}

/// Runs one attempt: finds the job's fn, runs it, and turns a panic into a failure.
async fn attempt(shared: &Shared, job: &ClaimedJob) -> Result<(), Failure> {
    let Some(descriptor) = registry().get(job.name.as_str()) else {
        return Err(Failure::permanent(format!(
            "job `{}` is not registered in this binary: no #[job] fn has this name \
             (renamed or removed? pin names with #[job(id = \"…\")])",
            job.name
        )));
    };
    let context = JobContext::new(
        job.id,
        job.name.clone(),
        job.attempt,
        shared.jobs.clock().clone(),
        shared.stop_jobs.child_token(),
    );
    let invocation = Invocation::new(job.payload.clone(), context, shared.state.clone());
    let run = AssertUnwindSafe(async move { descriptor.run(invocation).await });
    match run.catch_unwind().await {
        Ok(result) => result,
        Err(panic) => Err(Failure::new(format!(
            "panicked: {}",
            panic_message(&*panic)
        ))),
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a panic payload that is not a string)")
}

/// What a finished attempt leads to: success, a retry after the back-off, or failure
/// for good.
pub(super) fn outcome(shared: &Shared, job: &ClaimedJob, result: Result<(), Failure>) -> Outcome {
    match result {
        Ok(()) => Outcome::Succeeded,
        Err(failure) => retry_or_fail(shared, job.id, job.attempt, job.max_retries, failure),
    }
}

pub(super) fn retry_or_fail(
    shared: &Shared,
    id: crate::JobId,
    attempt: u32,
    max_retries: Option<u32>,
    failure: Failure,
) -> Outcome {
    let retries = max_retries.unwrap_or(shared.config.default_retries);
    if failure.is_permanent() || attempt > retries {
        return Outcome::Failed { failure };
    }
    let delay = retry::backoff(attempt, id, shared.config.backoff_seed);
    let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
    Outcome::Retry {
        at: shared.jobs.now() + delay,
        failure,
    }
}
