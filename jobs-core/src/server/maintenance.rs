//! Work a server does on a timer besides running jobs: heartbeat (which extends the
//! lease of its running jobs), rescue jobs of servers that stopped heartbeating, and
//! prune old rows. Every step is idempotent, so servers doing it at once is harmless.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Shared;
use super::worker::retry_or_fail;
use crate::storage::{AdminStore, Completion, LifecycleStore, ServerRow, ServerStore};
use crate::{Failure, Result};

/// Orphans rescued per round; the next round takes the rest.
const RESCUE_BATCH: u32 = 500;

pub(super) async fn run(shared: Arc<Shared>) {
    let clock = shared.jobs.clock().clone();
    loop {
        let moved = clock.moved();
        tokio::select! {
            () = shared.stop_maintenance.cancelled() => return,
            () = tokio::time::sleep(shared.config.poll_interval) => {}
            () = moved => {}
        }
        if let Err(error) = heartbeat(&shared).await {
            tracing::warn!(%error, "heartbeat failed");
            continue;
        }
        if let Err(error) = rescue(&shared).await {
            tracing::warn!(%error, "could not rescue orphaned jobs");
        }
        if let Err(error) = prune(&shared).await {
            tracing::warn!(%error, "could not prune old jobs");
        }
    }
}

pub(super) async fn heartbeat(shared: &Shared) -> Result<()> {
    let now = shared.jobs.now();
    let row = ServerRow {
        running: shared.running.load(Ordering::Relaxed),
        ..shared.row.clone()
    };
    shared
        .storage
        .server_heartbeat(&row, now, now + to_chrono(shared.config.server_timeout))
        .await
}

/// Fails the current attempt of every job whose lease ran out and retries it, fenced on
/// the dead owner's attempt so a late result from that owner is ignored.
async fn rescue(shared: &Shared) -> Result<()> {
    let now = shared.jobs.now();
    let expired = shared.storage.jobs_expired(now, RESCUE_BATCH).await?;
    if expired.is_empty() {
        return Ok(());
    }
    tracing::warn!(
        jobs = expired.len(),
        "rescuing jobs of servers that stopped heartbeating"
    );
    let completions: Vec<Completion> = expired
        .into_iter()
        .map(|job| {
            let failure = Failure::new(format!(
                "orphaned: server {} stopped heartbeating",
                job.owner
            ));
            Completion {
                outcome: retry_or_fail(shared, job.id, job.attempt, job.max_retries, failure),
                id: job.id,
                owner: job.owner,
                attempt: job.attempt,
                at: now,
            }
        })
        .collect();
    shared.storage.jobs_complete(&completions).await
}

async fn prune(shared: &Shared) -> Result<()> {
    let now = shared.jobs.now();
    let config = &shared.config;
    shared
        .storage
        .jobs_prune(
            now - to_chrono(config.delete_succeeded_after),
            now - to_chrono(config.delete_deleted_after),
        )
        .await?;
    shared
        .storage
        .servers_prune(now - to_chrono(config.server_timeout) * 4)
        .await?;
    Ok(())
}

fn to_chrono(duration: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}
