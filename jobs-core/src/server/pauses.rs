//! The pauses as this server knows them: read from the store at most once a poll
//! interval (and at once after a pause or resume in this process), and applied to each
//! claim as exclusions, so a paused queue or job name is never claimed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::Shared;
use crate::PauseKind;
use crate::storage::AdminStore;

/// The paused queues and job names last read, and when.
pub(super) struct Pauses {
    local: watch::Receiver<u64>,
    view: Mutex<View>,
}

#[derive(Default, Clone)]
pub(super) struct View {
    /// When it was read; `None` before the first read.
    read_at: Option<Instant>,
    /// The local pause signal the read covers.
    seen: u64,
    pub(super) queues: Vec<String>,
    pub(super) jobs: Vec<String>,
}

impl Pauses {
    pub(super) fn new(local: watch::Receiver<u64>) -> Self {
        Self {
            local,
            view: Mutex::new(View::default()),
        }
    }

    /// The pauses as last read.
    pub(super) fn view(&self) -> View {
        self.view
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// The pauses to apply to a claim now: read again when the last read is a poll interval
/// old or a pause changed in this process. A failed read keeps the last view (the claim
/// that follows most likely fails the same way).
pub(super) async fn current(shared: &Shared) -> View {
    let pauses = &shared.pauses;
    let signal = *pauses.local.borrow();
    let view = pauses.view();
    let fresh = view
        .read_at
        .is_some_and(|at| at.elapsed() < shared.config.poll_interval.max(Duration::from_millis(1)))
        && view.seen == signal;
    if fresh {
        return view;
    }
    match shared.bounded(shared.storage.pauses_list()).await {
        Ok(list) => {
            let mut next = View {
                read_at: Some(Instant::now()),
                seen: signal,
                ..View::default()
            };
            for paused in list {
                match paused.kind {
                    PauseKind::Queue => next.queues.push(paused.name),
                    PauseKind::Job => next.jobs.push(paused.name),
                }
            }
            *pauses
                .view
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = next.clone();
            next
        }
        Err(error) => {
            tracing::warn!(%error, "could not read the paused queues; keeping the last ones read");
            view
        }
    }
}
