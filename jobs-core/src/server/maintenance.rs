//! Work a server does on a timer besides running jobs: heartbeat (which extends the
//! leases of the jobs it holds), rescue jobs of servers that stopped renewing their
//! leases, and prune old rows. Every step is idempotent, so servers doing it at once is
//! harmless.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Shared;
use crate::storage::{
    AdminStore, Completion, ExpiredJob, LifecycleStore, MAX_RESCUES, Outcome, ServerRow,
    ServerStore,
};
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

/// Renews the leases of the claims this server holds (running, claimed ahead, results
/// not written yet) and stops what it turns out to hold no more.
pub(super) async fn heartbeat(shared: &Shared) -> Result<()> {
    let now = shared.jobs.now();
    let row = ServerRow {
        running: shared.running.load(Ordering::Relaxed),
        ..shared.row.clone()
    };
    let (held, waiting) = shared.held();
    let lost = shared
        .storage
        .server_heartbeat(
            &row,
            &held,
            &waiting,
            shared.config.server_timeout,
            shared.jobs.clock().lease_offset(),
            now,
        )
        .await?;
    release_unheld(shared).await?;
    if lost.is_empty() {
        return Ok(());
    }
    // Claimed again elsewhere, rescued, released or gone: whatever this server still
    // runs of those claims must not go on beside another attempt.
    let tokens: HashMap<_, _> = held.iter().map(|fence| (fence.id, fence.token)).collect();
    {
        let running = shared.running_jobs();
        for id in &lost {
            if let Some((token, cancel)) = running.get(id)
                && tokens.get(id) == Some(token)
            {
                tracing::warn!(job = %id, "lost the claim of a running job; stopping it");
                cancel.cancel();
            }
        }
    }
    shared
        .ready()
        .retain(|job| !(lost.contains(&job.id) && tokens.get(&job.id) == Some(&job.token)));
    Ok(())
}

/// Puts back the rows this server owns in the database but does not hold (a claim whose
/// answer never arrived, a result lost), unless a claim is in flight: its rows are not
/// registered yet.
async fn release_unheld(shared: &Shared) -> Result<()> {
    // A server stopping leaves its rows to its shutdown (or, dropped, to the rescue).
    if shared.stop_maintenance.is_cancelled() {
        return Ok(());
    }
    let Ok(_claiming) = shared.claiming.try_lock() else {
        return Ok(());
    };
    let (held, _) = shared.held();
    let held: Vec<_> = held.iter().map(|fence| fence.id).collect();
    let now = shared.jobs.now();
    let released = shared
        .storage
        .jobs_release_unheld(&shared.row.id, &held, now)
        .await?;
    if released > 0 {
        tracing::warn!(
            released,
            "put back jobs this server owned but no longer held"
        );
    }
    Ok(())
}

/// Rescues every job whose lease ran out, fenced on the dead owner's claim so that a
/// late result from that owner is ignored. A job that never started (claimed ahead)
/// goes back uncharged; one that started runs again at once, its attempt counted but
/// never failed for the rescue, unless it was rescued [`MAX_RESCUES`] times.
async fn rescue(shared: &Shared) -> Result<()> {
    let now = shared.jobs.now();
    let offset = shared.jobs.clock().lease_offset();
    let expired = shared
        .storage
        .jobs_expired(now, offset, RESCUE_BATCH)
        .await?;
    if expired.is_empty() {
        return Ok(());
    }
    tracing::warn!(
        jobs = expired.len(),
        "rescuing jobs of servers that stopped renewing their leases"
    );
    let completions: Vec<Completion> = expired
        .into_iter()
        .map(|job| Completion {
            outcome: rescued(&job, now),
            id: job.id,
            owner: job.owner,
            token: job.token,
            attempt: job.attempt,
            at: now,
        })
        .collect();
    shared.storage.jobs_complete(&completions).await
}

/// What a rescue does to a job whose lease ran out.
fn rescued(job: &ExpiredJob, now: chrono::DateTime<chrono::Utc>) -> Outcome {
    let owner = &job.owner;
    if job.ahead {
        return Outcome::NotStarted {
            at: now,
            note: format!(
                "put back: it never started (claimed ahead by server {owner}, which stopped \
                 renewing its lease)"
            ),
        };
    }
    if job.rescues + 1 >= MAX_RESCUES {
        return Outcome::Failed {
            failure: Failure::new(format!(
                "orphaned {MAX_RESCUES} times: its server died during every run (does the \
                 job crash its process?)"
            )),
        };
    }
    Outcome::Orphaned {
        at: now,
        failure: Failure::new(format!(
            "orphaned: server {owner} stopped renewing its lease (the attempt may have \
             finished; what a crash loses runs again)"
        )),
    }
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

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::JobId;

    fn expired(ahead: bool, rescues: u32) -> ExpiredJob {
        ExpiredJob {
            id: JobId::new(),
            owner: "dead".to_owned(),
            token: 3,
            attempt: 1,
            ahead,
            rescues,
        }
    }

    #[test]
    fn a_rescue_never_fails_a_job_before_max_rescues() {
        let now = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        let Outcome::NotStarted { at, note } = rescued(&expired(true, MAX_RESCUES), now) else {
            panic!("a job claimed ahead goes back uncharged");
        };
        assert_eq!(at, now);
        assert!(note.contains("never started"), "{note}");
        for rescues in 0..MAX_RESCUES - 1 {
            let Outcome::Orphaned { at, failure } = rescued(&expired(false, rescues), now) else {
                panic!("rescue {} of a started job runs it again", rescues + 1);
            };
            assert_eq!(at, now, "at once");
            assert_eq!(
                failure.message(),
                "orphaned: server dead stopped renewing its lease (the attempt may have \
                 finished; what a crash loses runs again)"
            );
        }
        let Outcome::Failed { failure } = rescued(&expired(false, MAX_RESCUES - 1), now) else {
            panic!("the {MAX_RESCUES}th rescue fails it");
        };
        assert_eq!(
            failure.message(),
            "orphaned 10 times: its server died during every run (does the job crash its \
             process?)"
        );
    }
}
