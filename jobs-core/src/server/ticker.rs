//! The ticker: fires recurring jobs. Every server runs this loop; the compare-and-set on
//! `next_run_at` and the per-tick job id make each tick create one run however many
//! servers race for it.

use std::sync::Arc;
use std::time::Duration;

use super::Shared;
use crate::Result;
use crate::recurring::schedule::{Schedule, plan};
use crate::recurring::{JobTemplate, RecurringInfo};
use crate::storage::{FireRequest, Fired, RecurringStore};

/// Recurring jobs fired per round; a long backlog takes several rounds.
const DUE_BATCH: u32 = 100;

pub(super) async fn run(shared: Arc<Shared>) {
    let clock = shared.jobs.clock().clone();
    let mut changed = shared.jobs.subscribe_recurring();
    loop {
        let moved = clock.moved();
        if let Err(error) = fire_due(&shared).await {
            tracing::warn!(%error, "could not fire recurring jobs");
        }
        let wait = match shared.storage.recurring_next_run_at().await {
            Ok(Some(next)) => (next - clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(1), shared.config.poll_interval),
            Ok(None) | Err(_) => shared.config.poll_interval,
        };
        tokio::select! {
            () = shared.stop_maintenance.cancelled() => return,
            () = moved => {}
            _ = changed.changed() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

async fn fire_due(shared: &Shared) -> Result<()> {
    loop {
        let now = shared.jobs.now();
        let due = shared.storage.recurring_due(now, DUE_BATCH).await?;
        let full = due.len() == DUE_BATCH as usize;
        let mut created = false;
        for recurring in due {
            created |= fire(shared, &recurring, now).await? == Fired::Created;
        }
        if created {
            shared.jobs.notify_enqueued();
        }
        if !full {
            return Ok(());
        }
    }
}

async fn fire(
    shared: &Shared,
    recurring: &RecurringInfo,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Fired> {
    let schedule = match Schedule::from_stored(&recurring.schedule, &recurring.zone) {
        Ok(schedule) => schedule,
        Err(error) => {
            // Stored by a newer binary, or edited by hand: leave it to a server that reads it.
            tracing::error!(id = %recurring.id, %error, "recurring job has a schedule this server cannot read");
            return Ok(Fired::Lost);
        }
    };
    let plan = plan(&schedule, recurring.next_run_at, now, recurring.missed);
    let template = JobTemplate::stored(recurring);
    let runs: Vec<_> = plan
        .runs
        .iter()
        .map(|tick| template.run(&recurring.id, *tick, now))
        .collect();
    let fired = shared
        .storage
        .recurring_fire(FireRequest {
            id: &recurring.id,
            expected_next: recurring.next_run_at,
            next: plan.next,
            runs: &runs,
            allow_overlap: recurring.allow_overlap,
            now,
        })
        .await?;
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
