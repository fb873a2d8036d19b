//! Work a server does on a timer besides running jobs: rescue jobs of servers that
//! stopped renewing their leases, and prune old rows and events sent to jobs. Every
//! step is idempotent, so servers doing it at once is harmless. The heartbeat runs on a
//! thread of its own (`heartbeat.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::Shared;
use super::prune::{JobPrune, PRUNE_BATCH, PRUNE_BATCHES, before};
use crate::storage::{
    AdminStore, Completion, ExpiredJob, LifecycleStore, MAX_RESCUES, Outcome, ServerStore,
    SignalStore,
};
use crate::{Failure, Result};

/// Orphans rescued per round; the next round takes the rest.
const RESCUE_BATCH: u32 = 500;

/// A difference between the wall clock's and the monotonic clock's progress larger than
/// this is a jump of the wall clock.
const JUMP: Duration = Duration::from_secs(1);

pub(super) async fn run(shared: Arc<Shared>) {
    let clock = shared.jobs.clock().clone();
    let mut jumps = JumpDetector::new(SystemTime::now(), Instant::now());
    let mut job_prune = JobPrune::new();
    // How long a backlog of old jobs that the last round left rests: the next round
    // comes then if that is sooner than a poll interval, so that the backlog (millions,
    // after an outage or a shortened retention) goes down steadily while the jobs keep
    // most of the database, and rescue still runs between rounds.
    let mut behind: Option<Duration> = None;
    // When rescue last ran: a round that comes early for the backlog (every half second
    // or so while jobs run) prunes only; rescue, which first waits for two renewals of
    // this server's leases, keeps to the poll interval.
    let mut rescued: Option<Instant> = None;
    loop {
        let moved = clock.moved();
        let pause = behind.map_or(shared.config.poll_interval, |rest| {
            rest.min(shared.config.poll_interval)
        });
        let mut early = false;
        tokio::select! {
            () = shared.stop_maintenance.cancelled() => return,
            () = tokio::time::sleep(pause) => {
                early = rescued.is_some_and(|at| at.elapsed() < shared.config.poll_interval);
            }
            () = moved => {}
        }
        if early {
            behind = prune_round(&shared, &mut job_prune).await;
            continue;
        }
        rescued = Some(Instant::now());
        if shared.storage.local_clock()
            && let Some(jump) = jumps.observe(
                SystemTime::now(),
                Instant::now(),
                shared.config.server_timeout,
            )
        {
            tracing::warn!(
                jump = ?jump,
                "the system clock jumped: no rescue for one server timeout, so that live \
                 servers renew their leases on the new time first"
            );
        }
        if jumps.holds_rescue(Instant::now()) {
            continue;
        }
        if let Err(error) = rescue(&shared).await {
            tracing::warn!(%error, "could not rescue orphaned jobs");
        }
        if let Err(error) = fail_unserved(&shared).await {
            tracing::warn!(%error, "could not fail the jobs no server registers");
        }
        behind = prune_round(&shared, &mut job_prune).await;
    }
}

/// [`prune`], its error logged → how long the backlog rests, if one is left.
async fn prune_round(shared: &Shared, job_prune: &mut JobPrune) -> Option<Duration> {
    match prune(shared, job_prune).await {
        Ok(behind) => behind,
        Err(error) => {
            tracing::warn!(%error, "could not prune old jobs");
            None
        }
    }
}

/// Fails the jobs that waited `fail_unserved_after` past their due time while no live
/// server registers their name, so that nothing waits forever unseen. Only once this
/// server has run that long itself: after an outage of every server, the servers of
/// other builds get as long to come back before their jobs are failed.
async fn fail_unserved(shared: &Shared) -> Result<()> {
    let now = shared.jobs.now();
    let after = shared.config.fail_unserved_after;
    if now < shared.row.started_at || before(now, after) < shared.row.started_at {
        return Ok(());
    }
    let note = format!(
        " (it waited longer than fail_unserved_after, {}, for a server that does)",
        super::config::human(after)
    );
    for _ in 0..PRUNE_BATCHES {
        let failed = shared
            .bounded(shared.storage.jobs_fail_unserved(
                before(now, after),
                now,
                &shared.row.id,
                &note,
                PRUNE_BATCH,
            ))
            .await?;
        if failed > 0 {
            tracing::warn!(failed, "failed jobs that no server registers");
        }
        if failed < u64::from(PRUNE_BATCH) || shared.stop_maintenance.is_cancelled() {
            break;
        }
    }
    Ok(())
}

/// Rescues every job whose lease ran out, fenced on the dead owner's claim so that a
/// late result from that owner is ignored. A job that never started (claimed ahead)
/// goes back uncharged; one that started runs again at once, its attempt counted but
/// never failed for the rescue, unless it was rescued [`MAX_RESCUES`] times.
///
/// Only after this server renewed its own leases with the current time (so that a
/// move of the clock never makes it take its own live jobs for orphans), and never
/// while it cannot renew them.
async fn rescue(shared: &Shared) -> Result<()> {
    if shared.lease.fenced()
        || !shared
            .lease
            .fresh(super::heartbeat::bound(shared) * 2)
            .await
    {
        return Ok(());
    }
    let now = shared.jobs.now();
    let offset = shared.jobs.clock().lease_offset();
    let expired = shared
        .bounded(shared.storage.jobs_expired(now, offset, RESCUE_BATCH))
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
            result: None,
            at: now,
        })
        .collect();
    shared
        .bounded(shared.storage.jobs_complete(&completions))
        .await
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

/// Prunes a round of old jobs (see [`JobPrune`]) and the other old rows → how long the
/// round spent on a backlog of old jobs, when it left some for the next round.
async fn prune(shared: &Shared, job_prune: &mut JobPrune) -> Result<Option<Duration>> {
    let now = shared.jobs.now();
    let config = &shared.config;
    let round = job_prune
        .round(&shared.storage, config, now, &shared.stop_maintenance)
        .await?;
    if round.pruned > 0 {
        tracing::debug!(
            pruned = round.pruned,
            behind = round.behind.is_some(),
            "pruned old jobs"
        );
    }
    if shared.stop_maintenance.is_cancelled() {
        return Ok(None);
    }
    // The changes of the counts by state that PostgreSQL's triggers appended since.
    shared.bounded(shared.storage.jobs_count_fold()).await?;
    shared
        .bounded(
            shared
                .storage
                .servers_prune(before(now, config.server_timeout.saturating_mul(4))),
        )
        .await?;
    // Unique keys whose window ended: they make no enqueue a duplicate any more.
    for _ in 0..PRUNE_BATCHES {
        let pruned = shared
            .bounded(shared.storage.unique_prune(now, PRUNE_BATCH))
            .await?;
        if pruned < u64::from(PRUNE_BATCH) || shared.stop_maintenance.is_cancelled() {
            break;
        }
    }
    // Events sent to jobs, once no wait that begins can see them.
    for _ in 0..PRUNE_BATCHES {
        let pruned = shared
            .bounded(
                shared
                    .storage
                    .signals_prune(before(now, crate::EVENT_RETENTION), PRUNE_BATCH),
            )
            .await?;
        if pruned < u64::from(PRUNE_BATCH) || shared.stop_maintenance.is_cancelled() {
            break;
        }
    }
    Ok(round.behind)
}

/// Notices jumps of the wall clock (SQLite compares leases on it): between two
/// rounds, the wall clock and the monotonic clock should move alike. After a jump,
/// rescues wait one server timeout (monotonic) so that live servers renew their
/// leases on the new time first.
#[derive(Debug)]
struct JumpDetector {
    wall: SystemTime,
    mono: Instant,
    hold_until: Option<Instant>,
}

impl JumpDetector {
    fn new(wall: SystemTime, mono: Instant) -> Self {
        Self {
            wall,
            mono,
            hold_until: None,
        }
    }

    /// Takes a new reading; → the jump since the last one, if the clock jumped (then
    /// rescues are held for `hold`).
    fn observe(&mut self, wall: SystemTime, mono: Instant, hold: Duration) -> Option<Duration> {
        let mono_moved = mono.saturating_duration_since(self.mono);
        let jump = match wall.duration_since(self.wall) {
            Ok(wall_moved) => wall_moved.abs_diff(mono_moved),
            // Backwards: by how much, plus the time that did pass.
            Err(back) => back.duration() + mono_moved,
        };
        self.wall = wall;
        self.mono = mono;
        if jump > JUMP {
            self.hold_until = Some(mono + hold);
            return Some(jump);
        }
        None
    }

    /// Whether rescues wait after a jump.
    fn holds_rescue(&self, now: Instant) -> bool {
        self.hold_until.is_some_and(|until| now < until)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::JobId;

    #[test]
    fn a_jump_of_the_wall_clock_holds_rescues_for_one_server_timeout() {
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mono = Instant::now();
        let timeout = Duration::from_secs(20);
        let mut detector = JumpDetector::new(wall, mono);
        // Both clocks moved 5 s, give or take scheduling: no jump.
        let (wall, mono) = (
            wall + Duration::from_millis(5_300),
            mono + Duration::from_secs(5),
        );
        assert_eq!(detector.observe(wall, mono, timeout), None);
        assert!(!detector.holds_rescue(mono));
        // The wall clock jumps an hour ahead while 5 s pass.
        let (wall, mono) = (
            wall + Duration::from_secs(3605),
            mono + Duration::from_secs(5),
        );
        assert_eq!(
            detector.observe(wall, mono, timeout),
            Some(Duration::from_secs(3600))
        );
        assert!(detector.holds_rescue(mono));
        assert!(detector.holds_rescue(mono + Duration::from_secs(19)));
        assert!(!detector.holds_rescue(mono + timeout));
        // And back by a minute.
        let (wall, mono) = (
            wall - Duration::from_secs(55),
            mono + Duration::from_secs(5),
        );
        assert_eq!(
            detector.observe(wall, mono, timeout),
            Some(Duration::from_secs(60))
        );
        assert!(detector.holds_rescue(mono + Duration::from_secs(19)));
    }

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
