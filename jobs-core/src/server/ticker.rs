//! The ticker: fires recurring jobs. Every server runs this loop; the compare-and-set on
//! `next_run_at` and the per-tick job id make each tick create one run however many
//! servers race for it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Shared;
use crate::recurring::schedule::{Schedule, plan};
use crate::recurring::{JobTemplate, RecurringInfo};
use crate::storage::{FireRequest, Fired, RecurringStore};
use crate::{MissedTicks, Result};

/// Recurring jobs fired per round; a long backlog takes several rounds.
const DUE_BATCH: u32 = 100;

/// A recurring job that stays in error is logged again at most this often.
const LOG_AGAIN_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// A recurring job this server could not fire: it stays due, and is tried again a poll
/// interval later, not at every turn of the loop.
#[derive(Debug)]
struct Failing {
    error: String,
    retry_at: DateTime<Utc>,
    logged_at: DateTime<Utc>,
}

pub(super) async fn run(shared: Arc<Shared>) {
    let clock = shared.jobs.clock().clone();
    let mut changed = shared.jobs.subscribe_recurring();
    let mut failing = HashMap::new();
    let mut waiting = HashSet::new();
    loop {
        let moved = clock.moved();
        waiting.clear();
        if let Err(error) = fire_due(&shared, &mut failing, &mut waiting).await {
            tracing::warn!(%error, "could not fire recurring jobs");
        }
        let wait = next_wait(&shared, &failing, &waiting).await;
        tokio::select! {
            () = shared.stop_maintenance.cancelled() => return,
            () = moved => {}
            _ = changed.changed() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Until the next recurring job is due, or a failing one is tried again; at most a
/// poll interval. A failing job, or one `waiting` for its active run, stays due, so the
/// earliest `next_run_at` is then read among the others.
async fn next_wait(
    shared: &Shared,
    failing: &HashMap<String, Failing>,
    waiting: &HashSet<String>,
) -> Duration {
    let poll = shared.config.poll_interval;
    let now = shared.jobs.now();
    let next = if failing.is_empty() && waiting.is_empty() {
        shared.storage.recurring_next_run_at().await.ok().flatten()
    } else {
        let horizon = now + chrono::Duration::from_std(poll).unwrap_or(chrono::TimeDelta::MAX);
        match shared.storage.recurring_due(horizon, DUE_BATCH).await {
            Ok(due) => {
                let others = due
                    .iter()
                    .find(|recurring| {
                        !failing.contains_key(&recurring.id) && !waiting.contains(&recurring.id)
                    })
                    .map(|recurring| recurring.next_run_at);
                let retry = due
                    .iter()
                    .filter_map(|recurring| failing.get(&recurring.id))
                    .map(|failing| failing.retry_at)
                    .min();
                others.into_iter().chain(retry).min()
            }
            Err(_) => None,
        }
    };
    match next {
        Some(next) => (next - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .clamp(Duration::from_millis(1), poll),
        None => poll,
    }
}

/// Fires every due recurring job but those waiting to be tried again; one that cannot
/// be fired is marked in error and never stops the others.
async fn fire_due(
    shared: &Shared,
    failing: &mut HashMap<String, Failing>,
    waiting: &mut HashSet<String>,
) -> Result<()> {
    loop {
        let now = shared.jobs.now();
        let due = shared.storage.recurring_due(now, DUE_BATCH).await?;
        let full = due.len() == DUE_BATCH as usize;
        if !full {
            // A failing row that is no longer due was fired by another server, changed,
            // disabled or deleted: forget it.
            failing.retain(|id, _| due.iter().any(|recurring| &recurring.id == id));
        }
        let (mut created, mut advanced) = (false, false);
        for recurring in &due {
            if failing
                .get(&recurring.id)
                .is_some_and(|failing| failing.retry_at > now)
            {
                continue;
            }
            match fire(shared, recurring, now).await {
                Ok(Fired::Waiting) => {
                    failing.remove(&recurring.id);
                    waiting.insert(recurring.id.clone());
                }
                Ok(fired) => {
                    advanced = true;
                    created |= fired == Fired::Created;
                    if failing.remove(&recurring.id).is_some() {
                        tracing::info!(id = %recurring.id, "recurring job fires again");
                    }
                }
                Err(error) => mark_failing(shared, failing, recurring, error, now).await,
            }
        }
        if created {
            shared.jobs.notify_enqueued();
        }
        // Rows in error stay due: read the next batch only when this one moved on.
        if !full || !advanced {
            return Ok(());
        }
    }
}

/// Keeps `recurring` out of the ticker's way for a poll interval, logs it (again at most
/// once a minute while the error stays the same) and stores the error on its row for
/// the dashboard.
async fn mark_failing(
    shared: &Shared,
    failing: &mut HashMap<String, Failing>,
    recurring: &RecurringInfo,
    error: String,
    now: DateTime<Utc>,
) {
    let poll =
        chrono::Duration::from_std(shared.config.poll_interval).unwrap_or(chrono::TimeDelta::MAX);
    let retry_at = now.checked_add_signed(poll).unwrap_or(now);
    let log = match failing.get_mut(&recurring.id) {
        Some(known) if known.error == error => {
            known.retry_at = retry_at;
            let again = now - known.logged_at >= LOG_AGAIN_AFTER;
            if again {
                known.logged_at = now;
            }
            again
        }
        _ => {
            failing.insert(
                recurring.id.clone(),
                Failing {
                    error: error.clone(),
                    retry_at,
                    logged_at: now,
                },
            );
            true
        }
    };
    if log {
        tracing::error!(
            id = %recurring.id,
            %error,
            "recurring job cannot be fired; tried again every poll interval, its ticks left \
             as they are for a server that can"
        );
    }
    if recurring.error.as_deref() != Some(error.as_str())
        && let Err(store) = shared
            .bounded(
                shared
                    .storage
                    .recurring_set_error(&recurring.id, Some(&error)),
            )
            .await
    {
        tracing::debug!(id = %recurring.id, error = %store, "could not store the recurring job's error");
    }
}

/// Fires the due tick(s) of `recurring`; the error says why it could not.
async fn fire(
    shared: &Shared,
    recurring: &RecurringInfo,
    now: DateTime<Utc>,
) -> Result<Fired, String> {
    // Stored by a newer build, or edited by hand: left to a server that reads it.
    let schedule = Schedule::from_stored(&recurring.schedule, &recurring.zone)
        .map_err(|error| format!("this server cannot read its schedule: {error}"))?;
    let plan = plan(&schedule, recurring.next_run_at, now, recurring.missed);
    // Catch-up runs that must not overlap are made one at a time: the next missed tick
    // stays due, and waits while a run is active.
    let serial =
        !recurring.allow_overlap && matches!(recurring.missed, MissedTicks::CatchUp { .. });
    let (ticks, next) = match plan.runs.get(1) {
        Some(second) if serial => (&plan.runs[..1], Some(*second)),
        _ => (&plan.runs[..], plan.next),
    };
    let template = JobTemplate::stored(recurring);
    let runs: Vec<_> = ticks
        .iter()
        .map(|tick| template.run(&recurring.id, *tick, now))
        .collect();
    let fired = shared
        .storage
        .recurring_fire(FireRequest {
            id: &recurring.id,
            expected_next: recurring.next_run_at,
            next,
            runs: &runs,
            allow_overlap: recurring.allow_overlap,
            wait_for_active: serial,
            now,
        })
        .await
        .map_err(|error| format!("could not fire it: {error}"))?;
    match fired {
        Fired::Created if !runs.is_empty() => {
            tracing::debug!(id = %recurring.id, runs = runs.len(), "fired recurring job");
        }
        Fired::SkippedOverlap => {
            tracing::info!(id = %recurring.id, "previous run still active; tick skipped");
        }
        _ => {}
    }
    Ok(fired)
}
