//! Writes what running jobs report (log lines, progress) and how attempts ended, in
//! batches. After a quiet spell the first result is written at once; while results keep
//! coming, each write waits until [`FLUSH_INTERVAL`] has passed since the previous one
//! began (or [`BATCH`] results are waiting), so that under load one transaction records
//! hundreds of jobs instead of the handful that finished during the previous write. A
//! server with a global queue limit writes without that wait: until written, a result
//! holds a place of the limit (its row is `Processing`).
//!
//! Results written late cost nothing but the wait: a job's slot is free as soon as it
//! ends. How many results may wait unwritten is bounded: past [`MAX_UNRECORDED`] the
//! claim loop takes no more jobs until this task catches up.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;

use super::{Shared, Write};
use crate::storage::{Completion, Fence, LifecycleStore, LogLine, ProgressUpdate, RunningStore};

/// Most results in one transaction.
const BATCH: usize = 512;

/// Least time between the starts of two writes while results keep coming.
const FLUSH_INTERVAL: Duration = Duration::from_millis(5);

/// Most results ended but not yet written before the claim loop stops claiming.
pub(super) const MAX_UNRECORDED: usize = 4 * BATCH;

/// What the completer keeps across restarts: the channel, and what it took from it
/// and has not written yet, so a run that panics loses nothing.
#[derive(Clone)]
pub(super) struct State {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    rx: mpsc::UnboundedReceiver<Write>,
    batch: Batch,
}

/// Writes taken from the channel, sorted by kind, not yet written.
#[derive(Default)]
struct Batch {
    completions: Vec<Completion>,
    logs: Vec<LogLine>,
    progress: Vec<ProgressUpdate>,
    stopped: Vec<Fence>,
}

impl Batch {
    fn len(&self) -> usize {
        self.completions.len() + self.logs.len() + self.progress.len() + self.stopped.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&mut self, write: Write) {
        match write {
            Write::Completion(completion) => self.completions.push(completion),
            Write::Log(line) => self.logs.push(line),
            Write::Progress(update) => {
                // Only the latest report of a job matters.
                self.progress
                    .retain(|earlier| earlier.job_id != update.job_id);
                self.progress.push(update);
            }
            Write::Stopped(fence) => self.stopped.push(fence),
        }
    }
}

impl State {
    pub(super) fn new(rx: mpsc::UnboundedReceiver<Write>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                rx,
                batch: Batch::default(),
            })),
        }
    }
}

pub(super) async fn run(shared: Arc<Shared>, state: State) {
    let mut inner = state.inner.lock().await;
    let Inner { rx, batch } = &mut *inner;
    // Left by a run that failed: write it first.
    flush(&shared, batch).await;
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
                    if batch.len() >= BATCH {
                        flush(&shared, batch).await;
                    }
                }
                flush(&shared, batch).await;
                return;
            }
        }
        // With a global queue limit, a result not yet written holds a place of the
        // limit: write what has come at once. Results that end during a write still
        // go into the next one together.
        let due = if shared.config.global_queue_limits.is_empty() {
            last_write + FLUSH_INTERVAL
        } else {
            Instant::now()
        };
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
        flush(&shared, batch).await;
    }
}

/// Writes the batch, retrying through database outages (each call bounded by the
/// storage timeout): a result is never dropped. Log lines and progress go first, so a
/// job's last lines are in before it is done. Each part is cleared once written.
async fn flush(shared: &Shared, batch: &mut Batch) {
    if batch.is_empty() {
        return;
    }
    let mut delay = Duration::from_millis(50);
    loop {
        let written: crate::Result<()> = async {
            if !batch.logs.is_empty() {
                shared
                    .bounded(shared.storage.logs_insert(&batch.logs))
                    .await?;
                batch.logs.clear();
            }
            if !batch.progress.is_empty() {
                shared
                    .bounded(shared.storage.progress_update(&batch.progress))
                    .await?;
                batch.progress.clear();
            }
            if !batch.completions.is_empty() {
                shared
                    .bounded(shared.storage.jobs_complete(&batch.completions))
                    .await?;
                written(shared, &batch.completions);
                batch.completions.clear();
            }
            if !batch.stopped.is_empty() {
                shared
                    .bounded(shared.storage.jobs_stopped(&batch.stopped))
                    .await?;
                batch.stopped.clear();
            }
            Ok(())
        }
        .await;
        match written {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, jobs = batch.completions.len(), retry_in = ?delay, "could not record job results");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// These results are written: they are no longer held, and no longer count as waiting.
fn written(shared: &Shared, completions: &[Completion]) {
    {
        let mut held = shared.held();
        for completion in completions {
            if held.unwritten_token(completion.id) == Some(completion.token) {
                held.unwritten.remove(&completion.id);
            }
        }
    }
    let before = shared
        .unrecorded
        .fetch_sub(completions.len(), Ordering::Relaxed);
    // The claim loop may be holding back (too many results unwritten, or a queue's
    // global limit taken by jobs that were `Processing` until now): let it look again.
    if before >= MAX_UNRECORDED || !shared.config.global_queue_limits.is_empty() {
        shared.slot_freed.notify_one();
    }
}
