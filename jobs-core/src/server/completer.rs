//! Records finished attempts in batches: one transaction for every result that arrived
//! while the previous batch was being written. Under load that is hundreds of jobs per
//! commit; when idle it is one job, written at once, with no timer to wait for.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::Shared;
use crate::storage::{Completion, Storage};

/// Most results in one transaction.
const BATCH: usize = 512;

pub(super) async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Completion>) {
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
async fn flush(shared: &Shared, batch: &mut Vec<Completion>) {
    if batch.is_empty() {
        return;
    }
    let mut delay = Duration::from_millis(50);
    while let Err(error) = shared.storage.jobs_complete(batch).await {
        tracing::warn!(%error, jobs = batch.len(), retry_in = ?delay, "could not record job results");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    batch.clear();
}
