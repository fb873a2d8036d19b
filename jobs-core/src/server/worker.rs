//! The claim loop, the deleted-watcher, and what a claim asks for (the free slots, the
//! jobs claimed ahead, the queues and names it may take).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::OwnedSemaphorePermit;

use super::attempt::{Started, spawn_attempt, start};
use super::completer::MAX_UNRECORDED;
use super::pauses;
use super::{Shared, Write};
use crate::JobId;
use crate::storage::{
    ClaimRequest, ClaimedJob, Fence, LifecycleStore, QueueSelector, RateCap, RateStore,
    counted_for, queue_scope,
};

pub(super) async fn claim_loop(shared: Arc<Shared>) {
    let clock = shared.jobs.clock().clone();
    let mut enqueued = shared.jobs.subscribe_enqueued();
    let mut remote = shared.storage.wakeups();
    let mut failures = 0u32;
    // Whether the last idle wait found a due job it could not claim (its queue full).
    let mut blocked = false;
    // When jobs were last claimed ahead (see `short_jobs`).
    let mut ready_since = Instant::now();
    // When the window of a rated queue that the last claim found used up frees.
    let mut rate_frees = None;
    loop {
        // Subscribed before reading the time, so a move of a manual clock during this
        // round wakes the next wait instead of being missed.
        let moved = clock.moved();
        if shared.stop_claiming.is_cancelled() {
            // Jobs claimed ahead stay `Processing` under this server: shutdown puts
            // them back with the others it releases.
            return;
        }
        if shared.lease.fenced() {
            // No lease renewal for half the server timeout: start nothing until one
            // succeeds (it wakes this loop).
            tokio::select! {
                () = shared.stop_claiming.cancelled() => return,
                () = shared.slot_freed.notified() => {}
                () = tokio::time::sleep(shared.config.poll_interval) => {}
            }
            continue;
        }
        // Jobs claimed ahead start first: they come before anything a claim would find.
        while shared.has_ready() {
            let Ok(permit) = shared.slots.clone().try_acquire_owned() else {
                break;
            };
            if let Some((job, started)) = shared.take_ready() {
                spawn_attempt(&shared, job, started, permit);
            }
        }
        // Free slots, fewer while the completer is behind: results not yet written
        // are jobs a crash would run again, so their number stays bounded.
        let room = MAX_UNRECORDED.saturating_sub(shared.unrecorded.load(Ordering::Relaxed));
        let permits = shared.slots.available_permits();
        let free = permits.min(room);
        // While jobs are short, keep up to the prefetch limit claimed ahead, and claim
        // the next batch when workers have taken half of it (they wake this loop then),
        // so that they never wait for a claim. Jobs claimed ahead are left only when
        // every slot is taken.
        let waiting = shared.held().ready.len();
        let limit = shared.prefetch_limit();
        let short = free == permits && short_jobs(&shared);
        let ahead = if short {
            limit.saturating_sub(waiting)
        } else {
            0
        };
        let claim_now = if waiting == 0 {
            free + ahead > 0
        } else {
            short && waiting <= limit / 2 && ahead > 0
        };
        if waiting > 0 && !claim_now {
            // Every slot is taken and claimed jobs wait for one (a worker takes the
            // next when its job ends): if the running jobs turn out to be long, put the
            // waiting ones back for other servers.
            let waited = ready_since.elapsed();
            if waited >= ahead_wait(&shared) {
                release_ready(&shared).await;
                ready_since = Instant::now();
                continue;
            }
            tokio::select! {
                () = shared.stop_claiming.cancelled() => return,
                () = shared.slot_freed.notified() => tokio::task::yield_now().await,
                () = tokio::time::sleep(ahead_wait(&shared) - waited) => {}
            }
            continue;
        }
        let mut claimed_any = false;
        if claim_now {
            claim_starts(&shared);
            // Held from sending the claim until its jobs are held: the heartbeat puts
            // back rows owned but not held only while no claim is in flight.
            let claiming = shared.claiming.lock().await;
            match claim(&shared, free, free + ahead).await {
                Ok((claimed, frees)) => {
                    failures = 0;
                    rate_frees = frees;
                    claimed_any = !claimed.is_empty();
                    let full = claimed.len() == free + ahead;
                    let starting = register_claimed(&shared, claimed);
                    drop(claiming);
                    for (job, started, permit) in starting {
                        spawn_attempt(&shared, job, started, permit);
                    }
                    ready_since = Instant::now();
                    if full {
                        // There may be more waiting: claim again, after letting the
                        // tasks that are ready run (the jobs just spawned among them),
                        // so that the slots they free go into the same claim.
                        tokio::task::yield_now().await;
                        continue;
                    }
                }
                Err(error) => {
                    drop(claiming);
                    failures += 1;
                    let delay = outage_delay(failures, shared.config.poll_interval);
                    tracing::warn!(%error, retry_in = ?delay, "could not claim jobs");
                    tokio::select! {
                        () = shared.stop_claiming.cancelled() => return,
                        () = tokio::time::sleep(delay) => continue,
                    }
                }
            }
        }
        if shared.has_ready() {
            continue;
        }
        let wait = if free == 0 {
            shared.config.poll_interval
        } else {
            let (wait, due_now) = next_wait(&shared).await;
            // A due job that two rounds in a row could not claim waits in a full queue:
            // a freed slot wakes the loop, so do not spin on it.
            let stuck = due_now && !claimed_any && blocked;
            blocked = due_now && !claimed_any;
            let until = |at: DateTime<Utc>| {
                (at - shared.jobs.now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .clamp(Duration::from_millis(1), shared.config.poll_interval)
            };
            match rate_frees {
                // A due job may wait for a rate's window: claim again when it frees.
                Some(at) if due_now => until(at),
                Some(at) => wait.min(until(at)),
                None if stuck => shared.config.poll_interval,
                None => wait,
            }
        };
        tokio::select! {
            () = shared.stop_claiming.cancelled() => return,
            _ = enqueued.changed() => {}
            Ok(()) = changed(&mut remote) => {}
            () = moved => {}
            () = shared.slot_freed.notified() => {
                // Jobs that end together wake this loop with the first of them: let the
                // others that are ready finish too, so that one claim fills every slot
                // they free.
                tokio::task::yield_now().await;
            }
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Makes the jobs of a claim held: those that find a free slot are counted as running
/// (and returned, to be spawned), the rest wait claimed ahead. A claim that comes back
/// after the server fenced itself is dropped: those rows go back when the leases renew
/// (or are rescued, uncharged, if they do not).
fn register_claimed(
    shared: &Shared,
    claimed: Vec<ClaimedJob>,
) -> Vec<(ClaimedJob, Started, OwnedSemaphorePermit)> {
    let mut starting = Vec::new();
    let mut held = shared.held();
    if shared.lease.fenced() {
        if !claimed.is_empty() {
            tracing::warn!(
                jobs = claimed.len(),
                "a claim came back after the server fenced itself; not starting its jobs"
            );
        }
        return starting;
    }
    // The jobs stored as starting at once first (the claim's first `start_now`), then
    // those stored as claimed ahead, each in claim order.
    let mut claimed = claimed;
    claimed.sort_by_key(|job| job.ahead);
    let mut claimed = claimed.into_iter();
    for job in claimed.by_ref() {
        match shared.slots.clone().try_acquire_owned() {
            Ok(permit) => {
                let started = start(shared, &mut held, &job);
                starting.push((job, started, permit));
            }
            Err(_) => {
                held.ready.push_back(job);
                break;
            }
        }
    }
    held.ready.extend(claimed);
    starting
}

/// Whether the jobs that ended since the last claim were short ones, for which claiming
/// ahead pays: nine in ten of them took less than a sixteenth of the longest wait of a
/// job claimed ahead (see [`short`]). Jobs that run longer, or a mix, never lead to a
/// claim ahead.
fn short_jobs(shared: &Shared) -> bool {
    let ended = shared.ended.load(Ordering::Relaxed);
    let quick = shared.quick.load(Ordering::Relaxed);
    ended > 0 && quick * 10 >= ended * 9
}

/// Whether an attempt that took `took` counts as short: with the default prefetch of
/// eight jobs per worker, a job claimed ahead then waits at most half of
/// [`ahead_wait`], so it is never put back.
pub(super) fn short(shared: &Shared, took: Duration) -> bool {
    took < ahead_wait(shared) / 16
}

/// Just before a claim: the counts of `short_jobs` start again.
fn claim_starts(shared: &Shared) {
    shared.ended.store(0, Ordering::Relaxed);
    shared.quick.store(0, Ordering::Relaxed);
}

/// How long jobs claimed ahead may wait for a slot before they are put back.
fn ahead_wait(shared: &Shared) -> Duration {
    shared.config.poll_interval.min(AHEAD_WAIT)
}

/// Longest wait of a job claimed ahead for a slot (shorter with a shorter poll interval).
const AHEAD_WAIT: Duration = Duration::from_secs(1);

/// Puts jobs claimed ahead back to `Enqueued` for any server, their attempt not
/// counted. They are no longer held here from this moment, whatever the answer: a
/// release whose answer did not come (a timeout, a connection lost after the commit)
/// may have been committed, and another server may be running them already. Those the
/// database still says are this server's go back with the heartbeat's put-back of rows
/// owned but not held.
async fn release_ready(shared: &Shared) {
    // Held while the release is in flight, as while a claim is: the heartbeat puts back
    // rows owned but not held only when neither is, and from the next line on these
    // rows are both (it would put them back itself, as if they had been lost).
    let _claiming = shared.claiming.lock().await;
    let claims: Vec<Fence> = shared
        .held()
        .ready
        .drain(..)
        .map(|job| job.fence())
        .collect();
    let now = shared.jobs.now();
    match shared
        .bounded(
            shared
                .storage
                .jobs_release(&shared.row.id, Some(&claims), now),
        )
        .await
    {
        Ok(released) => tracing::debug!(
            released,
            "put back jobs claimed ahead that found no free slot"
        ),
        Err(error) => tracing::warn!(
            %error,
            jobs = claims.len(),
            "could not put back jobs claimed ahead; they will not start here, and the \
             heartbeat puts back those still this server's"
        ),
    }
    // Jobs run longer than a claim now: claim ahead again only once they do not.
    claim_starts(shared);
}

/// Resolves when another process signals new jobs; never without such signals.
async fn changed(remote: &mut Option<tokio::sync::watch::Receiver<u64>>) -> Result<(), ()> {
    match remote {
        Some(receiver) => receiver.changed().await.map_err(|_| ()),
        None => std::future::pending().await,
    }
}

/// Claims up to `total` jobs, of which the first `start_now` start at once and the rest
/// wait claimed ahead: from each queue with a concurrency limit or a rate as many as it
/// has room for (a global limit and a rate counted by the claim itself), then from
/// every other queue; all of them among the queues the server serves, none paused.
/// Also returns, when a rated queue's window was found used up, the time it frees.
async fn claim(
    shared: &Shared,
    start_now: usize,
    total: usize,
) -> crate::Result<(Vec<ClaimedJob>, Option<DateTime<Utc>>)> {
    let free = total;
    // Paused queues and job names are left out of every claim.
    let paused = pauses::current(shared).await;
    let names: Vec<String>;
    let names = if paused.jobs.is_empty() {
        &shared.row.jobs
    } else {
        names = shared
            .row
            .jobs
            .iter()
            .filter(|name| !paused.jobs.contains(name))
            .cloned()
            .collect();
        &names
    };
    let now = shared.jobs.now();
    let lease =
        chrono::Duration::from_std(shared.config.server_timeout).unwrap_or(chrono::Duration::MAX);
    let request = |queues, limit: usize| ClaimRequest {
        owner: &shared.row.id,
        limit: u32::try_from(limit).unwrap_or(u32::MAX),
        now,
        lease_until: now.checked_add_signed(lease).unwrap_or(now),
        offset: shared.jobs.clock().lease_offset(),
        queues,
        names: Some(names),
        start_now: u32::try_from(limit.min(start_now)).unwrap_or(u32::MAX),
        keyed: shared.keyed,
        rate: None,
    };
    let config = &shared.config;
    let served = |queue: &String| {
        config
            .queues
            .as_ref()
            .is_none_or(|only| only.contains(queue))
    };
    if shared.limited_queues.is_empty() && config.queues.is_none() {
        let all = if paused.queues.is_empty() {
            QueueSelector::All
        } else {
            QueueSelector::AllExcept(&paused.queues)
        };
        let claimed = shared
            .bounded(shared.storage.jobs_claim(request(all, free)))
            .await?;
        return Ok((claimed, None));
    }
    let mut claimed = Vec::new();
    let mut rate_frees: Option<DateTime<Utc>> = None;
    for queue in &shared.limited_queues {
        if paused.queues.contains(queue) || !served(queue) {
            continue;
        }
        let here = config.queue_limits.get(queue).map_or(usize::MAX, |limit| {
            limit.saturating_sub(shared.queue_running(queue))
        });
        let room = here.min(free - claimed.len());
        if room == 0 {
            continue;
        }
        let selector = match config.global_queue_limits.get(queue) {
            Some(&global) => {
                // This server's jobs of the queue stay `Processing` until their
                // results are written: while they alone fill the limit, the claim
                // would find no room, so do not ask (the completer wakes this loop
                // once it wrote).
                let mine = shared.queue_running(queue) + shared.held().unwritten_in(queue);
                if mine >= global {
                    continue;
                }
                QueueSelector::Capped {
                    queue,
                    global: u32::try_from(global).unwrap_or(u32::MAX),
                }
            }
            None => QueueSelector::Only(queue),
        };
        let rate = config.queue_rates.get(queue).copied();
        let scope = queue_scope(queue);
        let cap = rate.map(|rate| RateCap {
            scope: &scope,
            count: rate.count,
            window: counted_for(rate),
        });
        let jobs = shared
            .bounded(shared.storage.jobs_claim(ClaimRequest {
                rate: cap,
                ..request(selector, room)
            }))
            .await?;
        let short = jobs.len() < room;
        claimed.extend(jobs);
        if let Some(cap) = cap.filter(|_| short)
            && let Some(frees) = window_frees(shared, cap, now).await
        {
            rate_frees = Some(rate_frees.map_or(frees, |earlier| earlier.min(frees)));
        }
    }
    let rest = free - claimed.len();
    if rest == 0 {
        return Ok((claimed, rate_frees));
    }
    let left_out =
        |queue: &String| shared.limited_queues.contains(queue) || paused.queues.contains(queue);
    let others = match &config.queues {
        Some(only) => {
            let among: Vec<String> = only
                .iter()
                .filter(|queue| !left_out(queue))
                .cloned()
                .collect();
            if among.is_empty() {
                return Ok((claimed, rate_frees));
            }
            shared
                .bounded(
                    shared
                        .storage
                        .jobs_claim(request(QueueSelector::Among(&among), rest)),
                )
                .await?
        }
        None => {
            let excluded: Vec<String> = shared
                .limited_queues
                .iter()
                .chain(&paused.queues)
                .cloned()
                .collect();
            shared
                .bounded(
                    shared
                        .storage
                        .jobs_claim(request(QueueSelector::AllExcept(&excluded), rest)),
                )
                .await?
        }
    };
    claimed.extend(others);
    Ok((claimed, rate_frees))
}

/// When a rate whose claim took less than it asked for frees a start: `None` unless its
/// window holds `count` starts (the queue ran out of due jobs instead), or on a failed
/// read (the server then waits as for a full queue).
async fn window_frees(
    shared: &Shared,
    cap: RateCap<'_>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let window = shared
        .bounded(shared.storage.rate_window(cap.scope, now - cap.window))
        .await
        .ok()?;
    if window.started < u64::from(cap.count) {
        return None;
    }
    window.oldest?.checked_add_signed(cap.window)
}

/// How long to sleep when idle: until the next scheduled job is due, at most a poll
/// interval; and whether a job is due already.
async fn next_wait(shared: &Shared) -> (Duration, bool) {
    let poll = shared.config.poll_interval;
    match shared.bounded(shared.storage.jobs_next_run_at()).await {
        Ok(Some(due)) => {
            let wait = (due - shared.jobs.now()).to_std().unwrap_or(Duration::ZERO);
            (wait.clamp(Duration::from_millis(1), poll), wait.is_zero())
        }
        Ok(None) | Err(_) => (poll, false),
    }
}

/// Stops the attempts of jobs deleted while they run, and drops deleted jobs that wait
/// claimed ahead so they never start: at once for a delete in this process or (on
/// PostgreSQL) announced by another, within a poll interval otherwise.
pub(super) async fn watch_deleted(shared: Arc<Shared>) {
    let mut deleted = shared.jobs.subscribe_deleted();
    let mut remote = shared.storage.deletions();
    // The first round checks at once: a signal that came between the server's start and
    // these subscriptions (the listener announces itself when it connects) would
    // otherwise stay pending for a poll interval, and every job claimed ahead would
    // query the store before it starts.
    let mut first = true;
    loop {
        if !first {
            tokio::select! {
                () = shared.stop_maintenance.cancelled() => return,
                _ = deleted.changed() => {}
                Ok(()) = changed(&mut remote) => {}
                () = tokio::time::sleep(shared.config.poll_interval) => {}
            }
        }
        first = false;
        // The deletions this check covers: a worker about to start a job claimed ahead
        // checks it itself while a later one is not covered yet.
        let signal = shared.deletions.signal();
        // By claim: a job deleted when the store answers may have been requeued and
        // claimed here again by the time the answer is read; that claim goes on.
        let fences: Vec<Fence> = {
            let held = shared.held();
            held.running
                .iter()
                .map(|(&id, attempt)| Fence {
                    id,
                    token: attempt.token,
                })
                .chain(held.ready.iter().map(ClaimedJob::fence))
                .collect()
        };
        let ids: Vec<JobId> = fences.iter().map(|fence| fence.id).collect();
        if ids.is_empty() {
            shared.deletions.checked(signal);
            continue;
        }
        match shared
            .bounded(shared.storage.jobs_deleted_among(&ids))
            .await
        {
            Ok(gone) if gone.is_empty() => shared.deletions.checked(signal),
            Ok(gone) => {
                let gone: Vec<Fence> = fences
                    .into_iter()
                    .filter(|fence| gone.contains(&fence.id))
                    .collect();
                let dropped = shared.held().drop_deleted(&gone);
                shared.deletions.checked(signal);
                for fence in dropped {
                    tracing::info!(job = %fence.id, "job deleted while it waited claimed ahead; it will not start");
                    let _ = shared.writes.send(Write::Stopped(fence));
                }
            }
            Err(error) => tracing::warn!(%error, "could not check for deleted running jobs"),
        }
    }
}

/// Back-off while the database is unreachable: doubling from 100 ms up to the poll interval.
fn outage_delay(failures: u32, poll: Duration) -> Duration {
    (Duration::from_millis(100) * 2u32.saturating_pow(failures.min(16)))
        .min(poll.max(Duration::from_millis(100)))
}
