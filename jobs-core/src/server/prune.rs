//! The prune of finished jobs, round after round. Each round deletes at least as many
//! jobs as passed their retention since the round before, so that a steady stream of
//! finished jobs never outgrows the prune (the table stays bounded at any rate), plus a
//! bounded share of older ones, so that a backlog (millions, after an outage or a
//! shortened retention) goes down steadily while the jobs keep most of the database.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::{ServerConfig, bounded};
use crate::Result;
use crate::storage::{AdminStore, AnyStorage};

/// Jobs pruned per statement: each is a short transaction, however large the backlog.
pub(super) const PRUNE_BATCH: u32 = 1000;

/// Most statements per round for a backlog: of old jobs, beyond those due since the last
/// round, and of the other rows the maintenance prunes.
pub(super) const PRUNE_BATCHES: u32 = 10;

/// How a round takes a backlog of old jobs while jobs wait or run anywhere: one
/// statement, then a rest of nineteen times what it took before the next round takes
/// more. The backlog takes a twentieth of the time, in steps of one short statement, so
/// the jobs never wait for a run of them, however long they take. On SQLite a deletion
/// holds the one write lock that every claim and result waits for, and leaves pages to
/// the write-ahead log that the next commits checkpoint, so it costs the jobs several
/// times the time it takes: beside a prune of 10,000,000 old jobs a drain kept 66 % of
/// its speed at a tenth of the time, 90 % at a twentieth. On PostgreSQL, at a tenth, a
/// drain beside a prune of 1,000,000 kept 76–83 % on two cores.
const BUSY: Pace = Pace {
    batches: 1,
    share: 19,
};

/// The same while no job waits or runs in the whole database: ten statements, then a
/// rest as long as they took. An idle database sheds millions of old jobs about ten
/// times faster than a busy one; a job enqueued meanwhile waits for at most the
/// round's statements, and the next round takes one.
const IDLE: Pace = Pace {
    batches: PRUNE_BATCHES,
    share: 1,
};

/// How much of a backlog a round takes, and how long the backlog rests after it.
#[derive(Debug, Clone, Copy)]
struct Pace {
    /// Statements of the backlog per round.
    batches: u32,
    /// Times what the round spent on the backlog that it rests.
    share: u32,
}

/// The prune's memory across rounds.
#[derive(Debug)]
pub(super) struct JobPrune {
    /// Jobs per statement.
    batch: u32,
    /// The pace while jobs wait or run anywhere.
    busy: Pace,
    /// The pace while none does.
    idle: Pace,
    /// Until when the backlog rests, if it does.
    rest_until: Option<Instant>,
    /// The cutoffs of the last round that went through, if any: the jobs last changed
    /// between them and this round's passed their retention since.
    last: Option<Cutoffs>,
}

/// Jobs last changed before these times are past their retention.
#[derive(Debug, Clone, Copy)]
struct Cutoffs {
    succeeded: DateTime<Utc>,
    deleted: DateTime<Utc>,
}

/// What a round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Round {
    /// Jobs deleted.
    pub(super) pruned: u64,
    /// When jobs past their retention are left: how long the backlog rests before the
    /// next round may take more of it.
    pub(super) behind: Option<Duration>,
}

impl JobPrune {
    /// The prune of the server's storage: see [`BUSY`] and [`IDLE`].
    pub(super) fn new() -> Self {
        Self::paced(PRUNE_BATCH, BUSY, IDLE)
    }

    fn paced(batch: u32, busy: Pace, idle: Pace) -> Self {
        Self {
            batch,
            busy,
            idle,
            rest_until: None,
            last: None,
        }
    }

    /// Deletes, oldest first, as many jobs as passed their retention since the last
    /// round (counted on the clock's `now`, so a stream of any rate is kept pace with),
    /// then, unless the backlog rests, as many batches more of it as the pace allows
    /// (read from the counts by state once the jobs due are gone).
    pub(super) async fn round(
        &mut self,
        storage: &AnyStorage,
        config: &ServerConfig,
        now: DateTime<Utc>,
        stop: &CancellationToken,
    ) -> Result<Round> {
        let cutoffs = Cutoffs {
            succeeded: before(now, config.delete_succeeded_after),
            deleted: before(now, config.delete_deleted_after),
        };
        let timeout = config.storage_timeout;
        let due = match self.last {
            Some(last) => {
                bounded(
                    timeout,
                    storage.jobs_count_prunable(
                        last.succeeded..cutoffs.succeeded,
                        last.deleted..cutoffs.deleted,
                    ),
                )
                .await?
            }
            None => 0,
        };
        let batch = u64::from(self.batch);
        let resting = self.rest_until.filter(|until| Instant::now() < *until);
        // Until the jobs due are gone; then, unless the backlog rests, as much of it as
        // the pace allows (the most a pace could, until the pace is known).
        let mut most = match resting {
            Some(_) => due,
            None => due + batch * u64::from(self.busy.batches.max(self.idle.batches)),
        };
        let mut pruned = 0;
        // When the round began on the backlog, and at which pace.
        let mut backlog: Option<(Instant, Pace)> = None;
        while pruned < most {
            if pruned >= due && backlog.is_none() {
                let pace = if busy(storage, timeout).await? {
                    self.busy
                } else {
                    self.idle
                };
                most = due + batch * u64::from(pace.batches);
                backlog = Some((Instant::now(), pace));
            }
            let deleted = bounded(
                timeout,
                storage.jobs_prune(cutoffs.succeeded, cutoffs.deleted, self.batch),
            )
            .await?;
            pruned += deleted;
            if deleted < batch || stop.is_cancelled() {
                self.last = Some(cutoffs);
                self.rest_until = None;
                return Ok(Round {
                    pruned,
                    behind: None,
                });
            }
        }
        self.last = Some(cutoffs);
        if let Some((since, pace)) = backlog {
            let rest = since.elapsed().saturating_mul(pace.share);
            self.rest_until = Some(Instant::now() + rest);
        }
        let rest = self.rest_until.map_or(Duration::ZERO, |until| {
            until.saturating_duration_since(Instant::now())
        });
        Ok(Round {
            pruned,
            behind: Some(rest),
        })
    }
}

/// Whether any job waits or runs in the whole database, every server's included: the
/// counts by state, which cost the same at any table size.
async fn busy(storage: &AnyStorage, timeout: Duration) -> Result<bool> {
    let counts = bounded(timeout, storage.jobs_count()).await?;
    Ok(counts.iter().any(|(state, n)| {
        *n > 0
            && matches!(
                state,
                crate::JobState::Enqueued | crate::JobState::Processing
            )
    }))
}

/// `now - ago`, or the earliest time there is when that is out of range.
pub(super) fn before(now: DateTime<Utc>, ago: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(ago)
        .ok()
        .and_then(|ago| now.checked_sub_signed(ago))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::conformance::{TestDb, at, claim, done, id, job};
    use crate::storage::{Completion, LifecycleStore, Outcome};
    use crate::{Clock, JobId, ManualClock};

    /// Retention of both states here.
    const KEPT: Duration = Duration::from_secs(3600);

    /// Jobs `ids` finish at `when`: every fifth deleted, the others succeeded.
    async fn finish(s: &AnyStorage, ids: &[JobId], when: DateTime<Utc>) {
        let jobs: Vec<_> = ids.iter().map(|&id| job(id, "tidy")).collect();
        s.jobs_insert(&jobs).await.unwrap();
        for &id in ids.iter().step_by(5) {
            assert!(s.job_delete(id, when).await.unwrap());
        }
        let claimed = s.jobs_claim(claim("a", at(1), 1_000)).await.unwrap();
        assert_eq!(claimed.len(), ids.len() - ids.len().div_ceil(5));
        let completions: Vec<Completion> = claimed
            .iter()
            .map(|job| Completion {
                at: when,
                ..done(job.id, "a", 1, Outcome::Succeeded)
            })
            .collect();
        s.jobs_complete(&completions).await.unwrap();
    }

    /// Both states kept for [`KEPT`].
    fn kept() -> ServerConfig {
        ServerConfig {
            delete_succeeded_after: KEPT,
            delete_deleted_after: KEPT,
            ..ServerConfig::default()
        }
    }

    async fn left(s: &AnyStorage) -> u64 {
        s.jobs_count().await.unwrap().iter().map(|(_, n)| n).sum()
    }

    /// A backlog of old jobs goes a share per round, while a stream of jobs, more per
    /// round than that share, passes its retention: every round deletes the jobs due
    /// since the last one and the share besides, so the jobs left only go down.
    async fn a_prune_keeps_pace_with_a_stream_while_a_backlog_goes_down(db: TestDb) {
        let s = &db.storage;
        let config = kept();
        let stop = CancellationToken::new();
        // Rounds of 2 batches of 10 for the backlog (a share of 20), which never rests.
        let never_rests = Pace {
            batches: 2,
            share: 0,
        };
        let mut prune = JobPrune::paced(10, never_rests, never_rests);
        finish(s, &(0..200).map(id).collect::<Vec<_>>(), at(10)).await;
        let clock = ManualClock::new(at(100) + KEPT);
        let first = prune.round(s, &config, clock.now(), &stop).await.unwrap();
        assert_eq!(first.pruned, 20, "a first round knows no stream: the share");
        assert!(first.behind.is_some());
        assert_eq!(left(s).await, 180);
        for round in 1..=5_u128 {
            // 50 jobs finish within each ten seconds, and pass their retention.
            let ids: Vec<JobId> = (0..50).map(|n| id(1_000 * round + n)).collect();
            finish(s, &ids, clock.now() - KEPT + chrono::Duration::seconds(5)).await;
            clock.advance(Duration::from_secs(10));
            let done = prune.round(s, &config, clock.now(), &stop).await.unwrap();
            assert_eq!(done.pruned, 70, "round {round}: the 50 due and the share");
            assert!(done.behind.is_some(), "round {round}");
            let left = left(s).await;
            assert_eq!(
                u128::from(left),
                180 - 20 * round,
                "round {round}: the jobs past their retention went down by the share"
            );
        }
        // Without a stream, rounds take the share until the backlog is gone.
        let mut rounds = 0;
        while prune
            .round(s, &config, clock.now(), &stop)
            .await
            .unwrap()
            .behind
            .is_some()
        {
            rounds += 1;
        }
        assert_eq!((rounds, left(s).await), (4, 0));
    }

    /// While a job waits or runs anywhere in the database, a round takes the busy
    /// pace's statements of a backlog and rests; while none does, the idle pace's.
    async fn a_backlog_goes_at_the_busy_pace_while_jobs_wait_or_run(db: TestDb) {
        let s = &db.storage;
        let config = kept();
        let stop = CancellationToken::new();
        let paced = || {
            JobPrune::paced(
                10,
                Pace {
                    batches: 1,
                    share: 1_000,
                },
                Pace {
                    batches: 3,
                    share: 0,
                },
            )
        };
        let mut prune = paced();
        finish(s, &(0..100).map(id).collect::<Vec<_>>(), at(10)).await;
        let now = at(100) + KEPT;
        let idle = prune.round(s, &config, now, &stop).await.unwrap();
        assert_eq!(
            (idle.pruned, idle.behind),
            (30, Some(Duration::ZERO)),
            "nothing waits: three statements, no rest"
        );
        s.jobs_insert(&[job(id(5_000), "waits")]).await.unwrap();
        let waiting = prune.round(s, &config, now, &stop).await.unwrap();
        assert_eq!(waiting.pruned, 10, "a job waits: one statement");
        assert!(
            waiting.behind.is_some_and(|rest| rest > Duration::ZERO),
            "a job waits: the backlog rests, {waiting:?}"
        );
        let resting = prune.round(s, &config, now, &stop).await.unwrap();
        assert_eq!(resting.pruned, 0, "the backlog rests: nothing is due");
        assert!(resting.behind.is_some_and(|rest| rest > Duration::ZERO));

        let claimed = s.jobs_claim(claim("a", at(1), 10)).await.unwrap();
        assert_eq!(claimed.len(), 1);
        let mut prune = paced();
        let running = prune.round(s, &config, now, &stop).await.unwrap();
        assert_eq!(running.pruned, 10, "a job runs: one statement");
        assert!(
            running.behind.is_some_and(|rest| rest > Duration::ZERO),
            "a job runs: the backlog rests, {running:?}"
        );
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn a_sqlite_backlog_goes_at_the_busy_pace_while_jobs_wait_or_run() {
        a_backlog_goes_at_the_busy_pace_while_jobs_wait_or_run(TestDb::sqlite().await).await;
    }

    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn a_postgres_backlog_goes_at_the_busy_pace_while_jobs_wait_or_run() {
        a_backlog_goes_at_the_busy_pace_while_jobs_wait_or_run(TestDb::postgres().await).await;
    }

    #[test]
    fn extreme_retention_settings_never_overflow() {
        let now = Utc::now();
        assert_eq!(
            before(now, Duration::from_secs(300_000 * 365 * 24 * 3600)),
            DateTime::<Utc>::MIN_UTC
        );
        assert_eq!(before(now, Duration::MAX), DateTime::<Utc>::MIN_UTC);
        assert_eq!(
            before(now, Duration::from_secs(60)),
            now - chrono::Duration::seconds(60)
        );
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn a_sqlite_prune_keeps_pace_with_a_stream_while_a_backlog_goes_down() {
        a_prune_keeps_pace_with_a_stream_while_a_backlog_goes_down(TestDb::sqlite().await).await;
    }

    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn a_postgres_prune_keeps_pace_with_a_stream_while_a_backlog_goes_down() {
        a_prune_keeps_pace_with_a_stream_while_a_backlog_goes_down(TestDb::postgres().await).await;
    }
}
