//! The counts by state come from counters that triggers keep: after every kind of
//! write, they equal what a scan of the whole job table finds.

use super::*;
use crate::UniqueStates;
use crate::storage::{Admitted, UniqueClaim};

conformance!(counters_follow_every_write);

/// The counts as a `GROUP BY` over the whole job table finds them.
async fn scanned(s: &AnyStorage) -> Vec<(JobState, u64)> {
    match s {
        #[cfg(feature = "sqlite")]
        AnyStorage::Sqlite(storage) => storage.jobs_count_scanned().await,
        #[cfg(feature = "postgres")]
        AnyStorage::Postgres(storage) => storage.jobs_count_scanned().await,
    }
}

/// Inserts `jobs` in a transaction of the caller's that rolls back.
async fn rolled_back(s: &AnyStorage, jobs: &[NewJob]) {
    match s {
        #[cfg(feature = "sqlite")]
        AnyStorage::Sqlite(storage) => storage.jobs_insert_rolled_back(jobs).await,
        #[cfg(feature = "postgres")]
        AnyStorage::Postgres(storage) => storage.jobs_insert_rolled_back(jobs).await,
    }
}

/// Checks the counts against a scan after step `step`; every other step also folds
/// the changes (PostgreSQL), so that reads see counters, changes, and both.
async fn check(s: &AnyStorage, step: &mut u32, what: &str) {
    *step += 1;
    let expected = scanned(s).await;
    assert_eq!(s.jobs_count().await.unwrap(), expected, "after {what}");
    if step.is_multiple_of(2) {
        s.jobs_count_fold().await.unwrap();
        assert_eq!(
            s.jobs_count().await.unwrap(),
            expected,
            "after {what}, folded"
        );
    }
}

/// The result `outcome` of the claimed `job`, at `now`.
fn result(job: &ClaimedJob, owner: &str, now: DateTime<Utc>, outcome: Outcome) -> Completion {
    Completion {
        id: job.id,
        owner: owner.to_owned(),
        token: job.token,
        attempt: job.attempt,
        outcome,
        result: None,
        at: now,
    }
}

fn failure() -> Failure {
    Failure::new("no")
}

async fn counters_follow_every_write(s: &AnyStorage) {
    let step = &mut 0;
    check(s, step, "nothing").await;
    s.jobs_insert(&[job(id(1), "one")]).await.unwrap();
    check(s, step, "an enqueue").await;
    s.jobs_insert(&[
        job(id(2), "many"),
        job(id(3), "many"),
        job(id(4), "many"),
        job(id(5), "many"),
        NewJob {
            state: JobState::Scheduled,
            run_at: at(500),
            ..job(id(6), "later")
        },
    ])
    .await
    .unwrap();
    check(s, step, "an enqueue of many").await;
    s.jobs_insert(&[
        job(id(7), "parent"),
        child(id(8), id(7), false),
        child(id(9), id(7), true),
    ])
    .await
    .unwrap();
    check(s, step, "a chain").await;
    rolled_back(s, &[job(id(20), "gone"), job(id(21), "gone")]).await;
    check(s, step, "an enqueue rolled back").await;
    s.jobs_admit(&[job(id(10), "admitted"), job(id(11), "admitted")])
        .await
        .unwrap();
    check(s, step, "an admission").await;
    let unique = |job_id, state, replace| NewJob {
        state,
        run_at: at(60),
        unique: Some(UniqueClaim {
            key: Uuid::from_u128(7),
            until: at(100),
            states: UniqueStates::Successful,
            replace,
        }),
        ..job(id(job_id), "unique")
    };
    s.jobs_admit(&[unique(40, JobState::Scheduled, false)])
        .await
        .unwrap();
    check(s, step, "a unique job").await;
    let replaced = s.jobs_admit(&[unique(41, JobState::Enqueued, true)]).await;
    assert_eq!(replaced.unwrap(), [Admitted::Replaced(id(40))]);
    check(s, step, "a unique job replaced").await;
    let duplicate = s.jobs_admit(&[unique(42, JobState::Enqueued, false)]).await;
    assert_eq!(duplicate.unwrap(), [Admitted::Duplicate(id(40))]);
    check(s, step, "a duplicate").await;

    let claimed = s.jobs_claim(claim("a", at(1), 4)).await.unwrap();
    assert_eq!(claimed.len(), 4);
    check(s, step, "a claim").await;
    s.jobs_complete(&[
        result(&claimed[0], "a", at(2), Outcome::Succeeded),
        result(
            &claimed[1],
            "a",
            at(2),
            Outcome::Retry {
                at: at(100),
                failure: failure(),
            },
        ),
        result(
            &claimed[2],
            "a",
            at(2),
            Outcome::Failed { failure: failure() },
        ),
        result(
            &claimed[3],
            "a",
            at(2),
            Outcome::Sleeping {
                until: at(200),
                note: "sleeps".to_owned(),
                wait: None,
            },
        ),
    ])
    .await
    .unwrap();
    check(s, step, "results: success, retry, failure, sleep").await;
    // A result under a claim that is over changes nothing.
    s.jobs_complete(&[result(&claimed[0], "a", at(3), Outcome::Succeeded)])
        .await
        .unwrap();
    check(s, step, "a stale result").await;

    let claimed = s.jobs_claim(claim("b", at(3), 100)).await.unwrap();
    assert!(!claimed.is_empty());
    check(s, step, "a claim of the rest").await;
    let results: Vec<Completion> = claimed
        .iter()
        .enumerate()
        .map(|(n, job)| {
            let outcome = if job.id == id(7) || n % 2 == 0 {
                Outcome::Succeeded
            } else {
                Outcome::Failed { failure: failure() }
            };
            result(job, "b", at(4), outcome)
        })
        .collect();
    s.jobs_complete(&results).await.unwrap();
    check(s, step, "results that release continuations").await;

    let failed = JobQuery::state(JobState::Failed);
    let requeued = s.jobs_requeue_matching(&failed, at(5), off(at(5))).await;
    assert!(requeued.unwrap() > 0);
    check(s, step, "a requeue of the failed jobs").await;
    s.job_requeue(id(6), at(6), off(at(6))).await.unwrap();
    check(s, step, "a requeue of one job").await;
    s.job_delete(id(6), at(7)).await.unwrap();
    check(s, step, "a delete").await;
    let enqueued = JobQuery::state(JobState::Enqueued);
    s.jobs_delete_matching(&enqueued, at(8)).await.unwrap();
    check(s, step, "a delete of the enqueued jobs").await;

    // Claims that lapse: one released by its server, the others rescued.
    s.jobs_insert(&[
        job(id(30), "lapse"),
        job(id(31), "lapse"),
        job(id(32), "lapse"),
    ])
    .await
    .unwrap();
    let claimed = s.jobs_claim(claim("c", at(1000), 100)).await.unwrap();
    assert!(claimed.len() >= 3);
    check(s, step, "a claim that will lapse").await;
    s.jobs_release("c", Some(&[claimed[0].fence()]), at(1001))
        .await
        .unwrap();
    check(s, step, "a release").await;
    let expired = s.jobs_expired(at(5000), off(at(5000)), 100).await.unwrap();
    assert!(!expired.is_empty());
    let rescues: Vec<Completion> = expired
        .iter()
        .enumerate()
        .map(|(n, job)| Completion {
            id: job.id,
            owner: job.owner.clone(),
            token: job.token,
            attempt: job.attempt,
            outcome: if n == 0 {
                Outcome::Orphaned {
                    at: at(5000),
                    failure: failure(),
                }
            } else {
                Outcome::Failed { failure: failure() }
            },
            result: None,
            at: at(5000),
        })
        .collect();
    s.jobs_complete(&rescues).await.unwrap();
    check(s, step, "a rescue").await;
    s.jobs_fail_unserved(at(6000), at(6000), "s", "nobody serves it", 100)
        .await
        .unwrap();
    check(s, step, "the unserved failed").await;

    let pruned = s.jobs_prune(at(10_000), at(10_000), 100).await.unwrap();
    assert!(pruned > 0);
    check(s, step, "a prune").await;
    s.jobs_delete_matching(&JobQuery::default(), at(10_001))
        .await
        .unwrap();
    s.jobs_prune(at(20_000), at(20_000), 1000).await.unwrap();
    check(s, step, "a prune of everything").await;
    assert_eq!(s.jobs_count().await.unwrap(), scanned(s).await);
}
