//! Writes what running jobs report (log lines, progress) and how attempts ended, in
//! batches: one transaction for every result that arrived
//! while the previous batch was being written. Under load that is hundreds of jobs per
//! commit; when idle it is one job, written at once, with no timer to wait for.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::storage::ProgressUpdate;

use super::Record;
use super::Shared;
use crate::storage::Storage;

/// Most results in one transaction.
const BATCH: usize = 512;

pub(super) async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Record>) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            received = rx.recv() => match received {
                Some(completion) => batch.push(completion),
                None => break,
            },
            () = shared.stop_completer.cancelled() => {
                while let Ok(completion) = rx.try_recv() {
                    batch.push(completion);
                    if batch.len() == BATCH {
                        flush(&shared, &mut batch).await;
                    }
                }
                flush(&shared, &mut batch).await;
                return;
            }
        }
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(completion) => batch.push(completion),
                Err(_) => break,
            }
        }
        flush(&shared, &mut batch).await;
    }
}

/// Writes the batch, retrying through database outages: a result is never dropped.
/// Log lines and progress go first, so a job's last lines are in before it is done.
async fn flush(shared: &Shared, batch: &mut Vec<Record>) {
    if batch.is_empty() {
        return;
    }
    let mut completions = Vec::new();
    let mut logs = Vec::new();
    let mut progress: Vec<ProgressUpdate> = Vec::new();
    for record in batch.drain(..) {
        match record {
            Record::Completion(completion) => completions.push(completion),
            Record::Log(line) => logs.push(line),
            Record::Progress(update) => {
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
            Ok(())
        }
        .await;
        match written {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, jobs = completions.len(), retry_in = ?delay, "could not record job results");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
