//! What a server holds: the running attempts (and why one was stopped), the jobs
//! claimed ahead and the results waiting for the completer, under one lock; and the
//! deletion signals the deleted-watcher covers.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::JobId;
use crate::storage::{ClaimedJob, Fence};

/// The jobs a server holds, under one lock so that a job moving from one part to the
/// next is never missing from the set the heartbeat renews.
#[derive(Default)]
pub(super) struct Held {
    /// The attempts running now, by job.
    pub(super) running: HashMap<JobId, Attempt>,
    /// Jobs claimed ahead of free slots, in claim order: a worker whose job ends takes
    /// the next one here before it frees its slot.
    pub(super) ready: VecDeque<ClaimedJob>,
    /// Jobs whose result waits for the completer.
    pub(super) unwritten: HashMap<JobId, Unwritten>,
}

/// A result waiting for the completer: the token of its claim, and its queue (its row
/// stays `Processing` until written, so it still fills the queue's global limit).
pub(super) struct Unwritten {
    pub(super) token: i64,
    pub(super) queue: String,
}

impl Held {
    /// Every held attempt and, apart, the ids of those that wait (claimed ahead).
    pub(super) fn fences(&self) -> (Vec<Fence>, Vec<JobId>) {
        let mut held =
            Vec::with_capacity(self.running.len() + self.ready.len() + self.unwritten.len());
        held.extend(self.running.iter().map(|(&id, attempt)| Fence {
            id,
            token: attempt.token,
        }));
        held.extend(self.unwritten.iter().map(|(&id, unwritten)| Fence {
            id,
            token: unwritten.token,
        }));
        let waiting: Vec<JobId> = self.ready.iter().map(|job| job.id).collect();
        held.extend(self.ready.iter().map(|job| Fence {
            id: job.id,
            token: job.token,
        }));
        (held, waiting)
    }

    /// The token of `id`'s result waiting for the completer, if one does.
    pub(super) fn unwritten_token(&self, id: JobId) -> Option<i64> {
        self.unwritten.get(&id).map(|unwritten| unwritten.token)
    }

    /// How many results of `queue` wait for the completer.
    pub(super) fn unwritten_in(&self, queue: &str) -> usize {
        self.unwritten
            .values()
            .filter(|unwritten| unwritten.queue == queue)
            .count()
    }

    pub(super) fn ids(&self) -> Vec<JobId> {
        self.running
            .keys()
            .chain(self.unwritten.keys())
            .copied()
            .chain(self.ready.iter().map(|job| job.id))
            .collect()
    }

    /// The claims of `lost` still held here: running, claimed ahead or with a result
    /// waiting for the completer. A claim whose result was written after the heartbeat
    /// read the held set is missing from its renewal too, but it finished, not lost.
    pub(super) fn still_held(&self, lost: &[Fence]) -> Vec<Fence> {
        let held: HashSet<Fence> = self.fences().0.into_iter().collect();
        lost.iter()
            .copied()
            .filter(|fence| held.contains(fence))
            .collect()
    }

    /// Stops the attempts and drops the waiting jobs and unwritten results of `lost`,
    /// which are no longer this server's; → how many attempts it stopped.
    pub(super) fn drop_lost(&mut self, lost: &[Fence]) -> usize {
        // By claim, not by job: a claim the heartbeat read may be lost by the time it
        // renews while a newer claim of the same job, made since, goes on.
        let stopped = self.stop_claims(lost, Stop::Lost).len();
        for fence in lost {
            if self.unwritten_token(fence.id) == Some(fence.token) {
                self.unwritten.remove(&fence.id);
            }
        }
        self.drop_waiting(lost);
        stopped
    }

    /// Stops the attempts of the claims in `deleted` (their jobs were deleted) and drops
    /// those that wait claimed ahead, so they never start; → the dropped ones. By claim,
    /// as [`Held::drop_lost`]: a job deleted when the store answered may have been
    /// requeued and claimed again here since.
    pub(super) fn drop_deleted(&mut self, deleted: &[Fence]) -> Vec<Fence> {
        for fence in self.stop_claims(deleted, Stop::Deleted) {
            tracing::info!(job = %fence.id, "job deleted while running; stopping it");
        }
        self.drop_waiting(deleted)
    }

    /// Stops, for `why`, the running attempts of `claims` (an attempt of a later claim
    /// of the same job goes on); → the claims whose attempt it stopped.
    fn stop_claims(&self, claims: &[Fence], why: Stop) -> Vec<Fence> {
        let mut stopped = Vec::new();
        for fence in claims {
            if let Some(attempt) = self.running.get(&fence.id)
                && attempt.token == fence.token
            {
                attempt.stop(why);
                stopped.push(*fence);
            }
        }
        stopped
    }

    /// Drops the jobs claimed ahead under `claims`; → those it dropped.
    fn drop_waiting(&mut self, claims: &[Fence]) -> Vec<Fence> {
        let claims: HashSet<Fence> = claims.iter().copied().collect();
        let mut dropped = Vec::new();
        self.ready.retain(|job| {
            let keep = !claims.contains(&job.fence());
            if !keep {
                dropped.push(job.fence());
            }
            keep
        });
        dropped
    }
}

/// Signals that jobs were deleted (in this process, and from others where the backend
/// says so), and the last of them the deleted-watcher has checked the held jobs for.
pub(super) struct Deletions {
    pub(super) local: tokio::sync::watch::Receiver<u64>,
    pub(super) remote: Option<tokio::sync::watch::Receiver<u64>>,
    pub(super) checked: Mutex<(u64, u64)>,
}

impl Deletions {
    pub(super) fn signal(&self) -> (u64, u64) {
        let remote = self.remote.as_ref().map_or(0, |remote| *remote.borrow());
        (*self.local.borrow(), remote)
    }

    /// The held jobs were checked for every deletion up to `signal`.
    pub(super) fn checked(&self, signal: (u64, u64)) {
        *self
            .checked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = signal;
    }

    /// Whether a deletion was signalled that no check has covered yet.
    pub(super) fn pending(&self) -> bool {
        self.signal()
            != *self
                .checked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running attempt: its token, and what stops it.
pub(super) struct Attempt {
    pub(super) token: i64,
    pub(super) cancel: CancellationToken,
    pub(super) why: Arc<AtomicU8>,
}

/// Why an attempt was stopped before it ended; the first reason given wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Stop {
    /// Not stopped, or stopped with every job at shutdown past the grace period.
    Shutdown = 0,
    /// Its job was deleted.
    Deleted = 1,
    /// The server fenced itself: it could not renew its leases.
    Fenced = 2,
    /// Its lease is no longer this server's.
    Lost = 3,
}

impl Attempt {
    pub(super) fn stop(&self, why: Stop) {
        let _ = self
            .why
            .compare_exchange(0, why as u8, Ordering::AcqRel, Ordering::Acquire);
        self.cancel.cancel();
    }
}

pub(super) fn stop_reason(why: &AtomicU8) -> Stop {
    match why.load(Ordering::Acquire) {
        1 => Stop::Deleted,
        2 => Stop::Fenced,
        3 => Stop::Lost,
        _ => Stop::Shutdown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claimed(n: u128, token: i64) -> ClaimedJob {
        ClaimedJob {
            id: JobId::from(uuid::Uuid::from_u128(n)),
            name: "job".into(),
            payload: "{}".into(),
            attempt: 1,
            max_retries: None,
            queue: "default".into(),
            run_at: chrono::Utc::now(),
            token,
            ahead: false,
            trace_context: None,
        }
    }

    fn pending(token: i64) -> Unwritten {
        Unwritten {
            token,
            queue: "default".to_owned(),
        }
    }

    fn attempt(token: i64) -> Attempt {
        Attempt {
            token,
            cancel: CancellationToken::new(),
            why: Arc::new(AtomicU8::new(0)),
        }
    }

    #[test]
    fn the_held_set_is_what_runs_waits_and_awaits_writing_and_loses_what_is_lost() {
        let mut held = Held::default();
        let [running, waiting, unwritten, lost] = [1, 2, 3, 4].map(|n| claimed(n, 10 + n as i64));
        held.running.insert(running.id, attempt(running.token));
        held.running.insert(lost.id, attempt(lost.token));
        held.ready.push_back(waiting.clone());
        held.unwritten
            .insert(unwritten.id, pending(unwritten.token));

        let (mut fences, waits) = held.fences();
        fences.sort_by_key(|fence| fence.token);
        let tokens: Vec<(JobId, i64)> = fences.iter().map(|f| (f.id, f.token)).collect();
        assert_eq!(
            tokens,
            [
                (running.id, 11),
                (waiting.id, 12),
                (unwritten.id, 13),
                (lost.id, 14)
            ]
        );
        assert_eq!(waits, [waiting.id], "only jobs claimed ahead wait");

        let stopped = held.drop_lost(&[
            Fence {
                id: lost.id,
                token: 14,
            },
            Fence {
                id: waiting.id,
                token: 12,
            },
            Fence {
                id: unwritten.id,
                token: 13,
            },
        ]);
        assert_eq!(stopped, 1);
        let lost_attempt = &held.running[&lost.id];
        assert!(lost_attempt.cancel.is_cancelled());
        assert_eq!(stop_reason(&lost_attempt.why), Stop::Lost);
        assert!(!held.running[&running.id].cancel.is_cancelled());
        assert!(held.ready.is_empty());
        assert!(held.unwritten.is_empty());
    }

    /// A result written between the heartbeat's read of the held set and its renewal
    /// is missing from the renewal, but no longer held: finished, not lost. Claims
    /// still held (of any part) are lost; a newer claim of the same job is not.
    #[test]
    fn only_claims_still_held_are_lost() {
        let mut held = Held::default();
        let [running, waiting, unwritten, written, again] = [1, 2, 3, 4, 5].map(|n| claimed(n, 7));
        held.running.insert(running.id, attempt(7));
        held.ready.push_back(waiting.clone());
        held.unwritten.insert(unwritten.id, pending(7));
        held.running.insert(again.id, attempt(8));
        let fence = |job: &ClaimedJob| Fence {
            id: job.id,
            token: 7,
        };
        let missing = [
            fence(&running),
            fence(&waiting),
            fence(&unwritten),
            fence(&written),
            fence(&again),
        ];
        assert_eq!(
            held.still_held(&missing),
            [fence(&running), fence(&waiting), fence(&unwritten)]
        );
    }

    /// A heartbeat reads the held set, then renews: meanwhile the attempt it read may
    /// have finished, the job been requeued and claimed again here. The old claim is
    /// lost; the new one, of the same job, must go on.
    #[test]
    fn a_lost_claim_stops_nothing_of_a_newer_claim_of_the_same_job() {
        let mut held = Held::default();
        let [running, waiting, unwritten] = [1, 2, 3].map(|n| claimed(n, 2));
        held.running.insert(running.id, attempt(2));
        held.ready.push_back(waiting.clone());
        held.unwritten.insert(unwritten.id, pending(2));

        let old = |job: &ClaimedJob| Fence {
            id: job.id,
            token: 1,
        };
        let stopped = held.drop_lost(&[old(&running), old(&waiting), old(&unwritten)]);
        assert_eq!(stopped, 0);
        assert!(!held.running[&running.id].cancel.is_cancelled());
        assert_eq!(
            held.ready.len(),
            1,
            "the job claimed ahead again still waits"
        );
        assert_eq!(held.unwritten_token(unwritten.id), Some(2));
    }

    #[test]
    fn a_deletion_stops_the_claims_it_was_read_for_only() {
        let mut held = Held::default();
        let [old_run, new_run, old_wait, new_wait] = [1, 2, 3, 4].map(|n| claimed(n, 2));
        held.running.insert(old_run.id, attempt(2));
        held.running.insert(new_run.id, attempt(3));
        held.ready.push_back(old_wait.clone());
        held.ready.push_back(claimed(4, 3));

        let deleted = [&old_run, &new_run, &old_wait, &new_wait].map(ClaimedJob::fence);
        let dropped = held.drop_deleted(&deleted);
        assert_eq!(dropped, [old_wait.fence()]);
        assert_eq!(stop_reason(&held.running[&old_run.id].why), Stop::Deleted);
        assert!(held.running[&old_run.id].cancel.is_cancelled());
        assert!(
            !held.running[&new_run.id].cancel.is_cancelled(),
            "requeued and claimed again since the deletion was read"
        );
        assert_eq!(held.ready.len(), 1);
        assert_eq!(held.ready[0].token, 3);
    }

    #[test]
    fn the_first_reason_to_stop_an_attempt_wins() {
        let attempt = attempt(1);
        attempt.stop(Stop::Deleted);
        attempt.stop(Stop::Fenced);
        assert_eq!(stop_reason(&attempt.why), Stop::Deleted);
        assert!(attempt.cancel.is_cancelled());
    }
}
