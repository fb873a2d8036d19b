//! Writes what running jobs report (log lines, progress) and how attempts ended, in
//! batches. After a quiet spell the first result is written at once; while results keep
//! coming, each write waits until [`FLUSH_INTERVAL`] has passed since the previous one
//! began (or [`BATCH`] results are waiting), so that under load one transaction records
//! hundreds of jobs instead of the handful that finished during the previous write.
//!
//! Results written late cost nothing but the wait: a job's slot is free as soon as it
//! ends. How many results may wait unwritten is bounded: past [`MAX_UNRECORDED`] the
//! claim loop takes no more jobs until this task catches up.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::storage::ProgressUpdate;

use super::{Shared, Write};
use crate::storage::{LifecycleStore, RunningStore};

/// Most results in one transaction.
const BATCH: usize = 512;

/// Least time between the starts of two writes while results keep coming.
const FLUSH_INTERVAL: Duration = Duration::from_millis(5);

/// Most results ended but not yet written before the claim loop stops claiming.
pub(super) const MAX_UNRECORDED: usize = 4 * BATCH;

pub(super) async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Write>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut last_write = Instant::now() - FLUSH_INTERVAL;
    loop {
        tokio::select! {
            received = rx.recv() => match received {
                Some(write) => batch.push(write),
                None => break,
            },
            () = shared.stop_completer.cancelled() => {
                while let Ok(write) = rx.try_recv() {
                    batch.push(write);
                    if batch.len() == BATCH {
                        flush(&shared, &mut batch).await;
                    }
                }
                flush(&shared, &mut batch).await;
                return;
            }
        }
        let due = last_write + FLUSH_INTERVAL;
        while batch.len() < BATCH {
            if let Ok(write) = rx.try_recv() {
                batch.push(write);
                continue;
            }
            tokio::select! {
                received = rx.recv() => match received {
                    Some(write) => batch.push(write),
                    None => break,
                },
                () = tokio::time::sleep_until(due) => break,
                () = shared.stop_completer.cancelled() => break,
            }
        }
        last_write = Instant::now();
        flush(&shared, &mut batch).await;
    }
}

/// Writes the batch, retrying through database outages: a result is never dropped.
/// Log lines and progress go first, so a job's last lines are in before it is done.
async fn flush(shared: &Shared, batch: &mut Vec<Write>) {
    if batch.is_empty() {
        return;
    }
    let mut completions = Vec::new();
    let mut logs = Vec::new();
    let mut progress: Vec<ProgressUpdate> = Vec::new();
    let mut stopped = Vec::new();
    for write in batch.drain(..) {
        match write {
            Write::Completion(completion) => completions.push(completion),
            Write::Stopped(fence) => stopped.push(fence),
            Write::Log(line) => logs.push(line),
            Write::Progress(update) => {
                // Only the latest report of a job matters.
                progress.retain(|earlier| earlier.job_id != update.job_id);
                progress.push(update);
            }
        }
    }
    let mut delay = Duration::from_millis(50);
    loop {
        let written: crate::Result<()> = async {
            if !logs.is_empty() {
                shared.storage.logs_insert(&logs).await?;
                logs.clear();
            }
            if !progress.is_empty() {
                shared.storage.progress_update(&progress).await?;
                progress.clear();
            }
            if !completions.is_empty() {
                shared.storage.jobs_complete(&completions).await?;
            }
            if !stopped.is_empty() {
                shared.storage.jobs_stopped(&stopped).await?;
            }
            Ok(())
        }
        .await;
        match written {
            Ok(()) => {
                {
                    let mut unwritten = shared.unwritten();
                    for completion in &completions {
                        if unwritten.get(&completion.id) == Some(&completion.token) {
                            unwritten.remove(&completion.id);
                        }
                    }
                }
                let before = shared
                    .unrecorded
                    .fetch_sub(completions.len(), Ordering::Relaxed);
                if before >= MAX_UNRECORDED {
                    // The claim loop may be holding back: let it look again.
                    shared.slot_freed.notify_one();
                }
                return;
            }
            Err(error) => {
                tracing::warn!(%error, jobs = completions.len(), retry_in = ?delay, "could not record job results");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
