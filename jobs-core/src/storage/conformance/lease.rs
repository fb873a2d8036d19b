//! Fencing tokens and leases: what an attempt that lost its claim can no longer write,
//! what a requeue waits for, how jobs claimed ahead and orphaned jobs are put back, and
//! whose clock a lease is on.

use super::*;

conformance!(
    writes_of_an_attempt_released_and_claimed_again_are_refused,
    requeue_of_a_deleted_job_still_stopping_is_refused,
    requeue_of_a_deleted_job_is_allowed_once_its_lease_ran_out,
    claim_starts_the_first_and_claims_the_rest_ahead,
    rescue_puts_jobs_claimed_ahead_back_uncharged,
    rescue_reruns_started_jobs_and_counts_the_rescues,
    release_unheld_puts_back_only_what_is_not_held,
);

/// A log line of `id` under `token`.
fn line(id: JobId, token: i64, message: &str) -> LogLine {
    LogLine {
        job_id: id,
        token,
        at: at(4),
        attempt: 1,
        level: LogLevel::Info,
        message: message.to_owned(),
    }
}

fn progress(id: JobId, token: i64, done: u64) -> ProgressUpdate {
    ProgressUpdate {
        job_id: id,
        token,
        done,
        total: 10,
    }
}

async fn writes_of_an_attempt_released_and_claimed_again_are_refused<S: Storage>(s: &S) {
    let first = insert_and_claim(s, &[job(id(1), "twice")], "a").await;
    assert_eq!(first[0].token, 1);
    // Released (its attempt not counted) and claimed again by the same server: same
    // owner, same attempt number, another claim.
    assert_eq!(s.jobs_release("a", None, at(2)).await.unwrap(), 1);
    let again = s.jobs_claim(claim("a", at(3), 1)).await.unwrap();
    assert_eq!((again[0].attempt, again[0].token), (1, 2));
    // What the first claim's attempt writes late lands nowhere.
    s.progress_update(&[progress(id(1), 1, 1)]).await.unwrap();
    s.logs_insert(&[line(id(1), 1, "stale")]).await.unwrap();
    s.step_put(fence(id(1), 1), "first", "1", at(4))
        .await
        .unwrap();
    s.jobs_complete(&[done(id(1), "a", 1, Outcome::Succeeded)])
        .await
        .unwrap();
    let stored = get(s, id(1)).await;
    assert_eq!(
        stored.state,
        JobState::Processing,
        "the stale result is refused"
    );
    assert_eq!(stored.progress, None, "the stale progress is refused");
    assert!(stored.logs.is_empty(), "the stale log line is refused");
    assert_eq!(s.step_get(id(1), "first").await.unwrap(), None);
    // The current claim's writes land.
    s.progress_update(&[progress(id(1), 2, 7)]).await.unwrap();
    s.logs_insert(&[line(id(1), 1, "stale"), line(id(1), 2, "current")])
        .await
        .unwrap();
    s.step_put(fence(id(1), 2), "first", "2", at(4))
        .await
        .unwrap();
    s.jobs_complete(&[Completion {
        token: 2,
        ..done(id(1), "a", 1, Outcome::Succeeded)
    }])
    .await
    .unwrap();
    let stored = get(s, id(1)).await;
    assert_eq!(stored.state, JobState::Succeeded);
    assert_eq!(stored.progress.map(|p| p.done), Some(7));
    let lines: Vec<&str> = stored.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(lines, ["current"]);
    assert_eq!(
        s.step_get(id(1), "first").await.unwrap().as_deref(),
        Some("2")
    );
    // A finished job takes no more writes, even of its last claim.
    s.progress_update(&[progress(id(1), 2, 9)]).await.unwrap();
    s.logs_insert(&[line(id(1), 2, "late")]).await.unwrap();
    let stored = get(s, id(1)).await;
    assert_eq!(
        (stored.progress.map(|p| p.done), stored.logs.len()),
        (Some(7), 1)
    );
}

async fn requeue_of_a_deleted_job_still_stopping_is_refused<S: Storage>(s: &S) {
    insert_and_claim(s, &[job(id(1), "running"), job(id(2), "other")], "a").await;
    assert!(s.job_delete(id(1), at(2)).await.unwrap());
    let deleted = get(s, id(1)).await;
    assert_eq!(deleted.owner.as_deref(), Some("a"), "the owner stops it");
    // Its attempt still runs on "a" until it stops: a requeue now would run it twice.
    assert_eq!(
        s.job_requeue(id(1), at(3), off(at(3))).await.unwrap(),
        Requeue::StillRunning {
            server: "a".to_owned()
        }
    );
    assert_eq!(state(s, id(1)).await, JobState::Deleted);
    let deleted = JobQuery::state(JobState::Deleted);
    assert_eq!(
        s.jobs_requeue_matching(&deleted, at(3), off(at(3)))
            .await
            .unwrap(),
        0,
        "a bulk requeue skips it"
    );
    // The owner renews its lease while the attempt stops …
    let renewed = s
        .server_heartbeat(
            &ServerRow {
                id: "a".to_owned(),
                name: "a".to_owned(),
                host: "h".to_owned(),
                pid: 1,
                workers: 1,
                running: 1,
                started_at: at(0),
                jobs: Vec::new(),
                shapes: std::collections::BTreeMap::new(),
                queues: ServerQueues::default(),
            },
            &[fence(id(1), 1)],
            &[],
            std::time::Duration::from_secs(600),
            off(at(50)),
            at(50),
        )
        .await
        .unwrap();
    assert!(renewed.is_empty());
    assert!(matches!(
        s.job_requeue(id(1), at(100), off(at(100))).await.unwrap(),
        Requeue::StillRunning { .. }
    ));
    // … and says when it has stopped: then the job may run again, on a new claim.
    assert_eq!(s.jobs_stopped(&[fence(id(1), 1)]).await.unwrap(), 1);
    assert_eq!(
        s.job_requeue(id(1), at(101), off(at(101))).await.unwrap(),
        Requeue::Requeued
    );
    let requeued = get(s, id(1)).await;
    assert_eq!((requeued.state, requeued.attempt), (JobState::Enqueued, 0));
    assert_eq!(requeued.owner, None);
    let claimed = s.jobs_claim(claim("b", at(102), 1)).await.unwrap();
    assert_eq!((claimed[0].id, claimed[0].attempt), (id(1), 1));
    assert_eq!(claimed[0].token, 2, "the token never goes back");
    // The old attempt's result, should it come, changes nothing.
    s.jobs_complete(&[done(id(1), "a", 1, Outcome::Succeeded)])
        .await
        .unwrap();
    assert_eq!(get(s, id(1)).await.owner.as_deref(), Some("b"));
    assert_eq!(state(s, id(2)).await, JobState::Processing);
}

async fn requeue_of_a_deleted_job_is_allowed_once_its_lease_ran_out<S: Storage>(s: &S) {
    // Leased until at(61); its server dies while it stops.
    insert_and_claim(s, &[job(id(1), "running")], "a").await;
    assert!(s.job_delete(id(1), at(2)).await.unwrap());
    assert!(matches!(
        s.job_requeue(id(1), at(59), off(at(59))).await.unwrap(),
        Requeue::StillRunning { .. }
    ));
    let deleted = JobQuery::state(JobState::Deleted);
    assert_eq!(
        s.jobs_requeue_matching(&deleted, at(63), off(at(63)))
            .await
            .unwrap(),
        1
    );
    let claimed = s.jobs_claim(claim("b", at(64), 1)).await.unwrap();
    assert_eq!((claimed[0].attempt, claimed[0].token), (1, 2));
}

async fn claim_starts_the_first_and_claims_the_rest_ahead<S: Storage>(s: &S) {
    let batch: Vec<NewJob> = (1..=4)
        .map(|n| NewJob {
            run_at: at(n - 10),
            ..job(id(n as u128), "short")
        })
        .collect();
    s.jobs_insert(&batch).await.unwrap();
    let request = ClaimRequest {
        start_now: 1,
        ..claim("a", at(1), 3)
    };
    let mut claimed = s.jobs_claim(request).await.unwrap();
    claimed.sort_by_key(|job| job.id.as_uuid());
    let seen: Vec<(JobId, bool, i64, u32)> = claimed
        .iter()
        .map(|job| (job.id, job.ahead, job.token, job.attempt))
        .collect();
    assert_eq!(
        seen,
        [
            (id(1), false, 1, 1),
            (id(2), true, 1, 1),
            (id(3), true, 1, 1)
        ],
        "the first in claim order starts, the others are claimed ahead, all counted"
    );
    let expired = s.jobs_expired(at(62), off(at(62)), 10).await.unwrap();
    let ahead: Vec<bool> = ids(&claimed)
        .iter()
        .map(|id| expired.iter().find(|e| e.id == *id).unwrap().ahead)
        .collect();
    assert_eq!(ahead, [false, true, true]);
}

async fn rescue_puts_jobs_claimed_ahead_back_uncharged<S: Storage>(s: &S) {
    s.jobs_insert(&[
        NewJob {
            max_retries: Some(0),
            run_at: at(-2),
            ..job(id(1), "started")
        },
        NewJob {
            max_retries: Some(0),
            run_at: at(-1),
            ..job(id(2), "waiting")
        },
    ])
    .await
    .unwrap();
    let request = ClaimRequest {
        start_now: 1,
        ..claim("dead", at(1), 2)
    };
    s.jobs_claim(request).await.unwrap();
    let expired = s.jobs_expired(at(100), off(at(100)), 10).await.unwrap();
    let waiting = expired.iter().find(|e| e.id == id(2)).unwrap();
    assert!(waiting.ahead);
    s.jobs_complete(&[Completion {
        id: id(2),
        owner: waiting.owner.clone(),
        token: waiting.token,
        attempt: waiting.attempt,
        outcome: Outcome::NotStarted {
            at: at(100),
            note: "it never started".to_owned(),
        },
        result: None,
        at: at(100),
    }])
    .await
    .unwrap();
    let back = get(s, id(2)).await;
    assert_eq!((back.state, back.attempt), (JobState::Enqueued, 0));
    assert_eq!(
        (back.run_at, back.owner, back.last_error),
        (at(100), None, None)
    );
    let last = back.history.last().unwrap();
    assert_eq!((last.state, last.attempt), (JobState::Enqueued, 0));
    assert_eq!(last.server.as_deref(), Some("dead"));
    assert_eq!(last.error.as_ref().unwrap().message, "it never started");
    // Not a finished attempt: the throughput does not count it.
    assert!(s.jobs_throughput(at(0)).await.unwrap().is_empty());
    // It runs on its first attempt, as if never claimed.
    let claimed = s.jobs_claim(claim("live", at(100), 10)).await.unwrap();
    assert_eq!(
        claimed
            .iter()
            .map(|c| (c.id, c.attempt, c.token))
            .collect::<Vec<_>>(),
        [(id(2), 1, 2)]
    );
}

async fn rescue_reruns_started_jobs_and_counts_the_rescues<S: Storage>(s: &S) {
    s.jobs_insert(&[NewJob {
        max_retries: Some(0),
        ..job(id(1), "orphan")
    }])
    .await
    .unwrap();
    for round in 0..3u32 {
        let now = at(1000 * i64::from(round));
        let claimed = s.jobs_claim(claim("dead", now, 1)).await.unwrap();
        assert_eq!(claimed[0].attempt, round + 1);
        let later = now + Duration::seconds(100);
        let expired = s.jobs_expired(later, off(later), 10).await.unwrap();
        let e = &expired[0];
        assert_eq!(
            (e.rescues, e.ahead, e.token),
            (round, false, i64::from(round) + 1)
        );
        s.jobs_complete(&[Completion {
            id: e.id,
            owner: e.owner.clone(),
            token: e.token,
            attempt: e.attempt,
            outcome: Outcome::Orphaned {
                at: later,
                failure: Failure::new("orphaned"),
            },
            result: None,
            at: later,
        }])
        .await
        .unwrap();
        let rescued = get(s, id(1)).await;
        assert_eq!(
            (rescued.state, rescued.run_at, rescued.attempt),
            (JobState::Scheduled, later, round + 1),
            "runs again at once, its attempt counted"
        );
        assert_eq!(rescued.last_error.as_deref(), Some("orphaned"));
    }
    // A requeue counts rescues from zero again.
    assert_eq!(
        s.job_requeue(id(1), at(5000), off(at(5000))).await.unwrap(),
        Requeue::Requeued
    );
    s.jobs_claim(claim("dead", at(5000), 1)).await.unwrap();
    let expired = s.jobs_expired(at(5100), off(at(5100)), 10).await.unwrap();
    assert_eq!((expired[0].rescues, expired[0].attempt), (0, 1));
}

async fn release_unheld_puts_back_only_what_is_not_held<S: Storage>(s: &S) {
    let batch: Vec<NewJob> = (1..=4)
        .map(|n| NewJob {
            run_at: at(n - 10),
            ..job(id(n as u128), "owned")
        })
        .collect();
    s.jobs_insert(&batch).await.unwrap();
    s.jobs_claim(claim("a", at(1), 3)).await.unwrap(); // 1, 2, 3
    s.jobs_claim(claim("b", at(1), 1)).await.unwrap(); // 4
    assert_eq!(
        s.jobs_release_unheld("a", &[id(1)], at(5)).await.unwrap(),
        2
    );
    for n in [2, 3] {
        let back = get(s, id(n)).await;
        assert_eq!(
            (back.state, back.attempt, back.owner),
            (JobState::Enqueued, 0, None)
        );
        assert_eq!(back.run_at, at(5));
        let last = back.history.last().unwrap();
        assert_eq!((last.state, last.at), (JobState::Enqueued, at(5)));
        assert_eq!(
            last.error.as_ref().unwrap().message,
            "released: its server no longer held it"
        );
    }
    assert_eq!(get(s, id(1)).await.owner.as_deref(), Some("a"));
    assert_eq!(get(s, id(4)).await.owner.as_deref(), Some("b"));
    assert_eq!(
        s.jobs_release_unheld("a", &[id(1)], at(6)).await.unwrap(),
        0
    );
    assert_eq!(s.jobs_release_unheld("a", &[], at(6)).await.unwrap(), 1);
}

/// A lease written by a server whose clock is wrong still runs out by the database's
/// clock: claims and renewals with a `now` an hour ahead or behind lease for the
/// minute asked, from the database's now.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_lease_written_with_a_skewed_clock_expires_by_the_database_clock() {
    let db = TestDb::postgres().await;
    lease_written_with_a_skewed_clock_expires_by_the_database_clock(&db.storage).await;
}

#[cfg(feature = "postgres")]
async fn lease_written_with_a_skewed_clock_expires_by_the_database_clock<S: Storage>(s: &S) {
    s.jobs_insert(&[
        NewJob {
            run_at: at(-100_000_000),
            ..job(id(1), "ahead")
        },
        NewJob {
            run_at: at(-100_000_000),
            ..job(id(2), "behind")
        },
    ])
    .await
    .unwrap();
    // A server whose clock is an hour ahead, with no offset of its own (a real clock).
    let fast = Utc::now() + Duration::hours(1);
    let claimed = s
        .jobs_claim(ClaimRequest {
            offset: Duration::zero(),
            ..claim("fast", fast, 1)
        })
        .await
        .unwrap();
    assert_eq!(claimed[0].id, id(1));
    // One an hour behind renews its job's lease for a minute.
    let slow = Utc::now() - Duration::hours(1);
    let mut claimed = s
        .jobs_claim(ClaimRequest {
            offset: Duration::zero(),
            ..claim("slow", slow, 1)
        })
        .await
        .unwrap();
    let renewed = s
        .server_heartbeat(
            &ServerRow {
                id: "slow".to_owned(),
                name: "slow".to_owned(),
                host: "h".to_owned(),
                pid: 1,
                workers: 1,
                running: 1,
                started_at: slow,
                jobs: Vec::new(),
                shapes: std::collections::BTreeMap::new(),
                queues: ServerQueues::default(),
            },
            &[claimed.remove(0).fence()],
            &[],
            std::time::Duration::from_secs(60),
            Duration::zero(),
            slow,
        )
        .await
        .unwrap();
    assert!(renewed.is_empty());
    // A rescuer with a true clock, looking 59 s and 61 s ahead of the database.
    let now = Utc::now();
    let soon = s
        .jobs_expired(now, Duration::seconds(59), 10)
        .await
        .unwrap();
    assert!(soon.is_empty(), "neither lease ran out yet: {soon:?}");
    let later = s
        .jobs_expired(now, Duration::seconds(61), 10)
        .await
        .unwrap();
    assert_eq!(later.len(), 2, "both leases follow the database's clock");
}

/// A delete is announced to every process listening on PostgreSQL.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_delete_is_announced() {
    let db = TestDb::postgres().await;
    let mut deletions = db
        .storage
        .deletions()
        .expect("PostgreSQL announces deletions");
    // Bumped once listening.
    announced(&mut deletions).await;
    insert_and_claim(&db.storage, &[job(id(1), "doomed")], "a").await;
    assert!(db.storage.job_delete(id(1), at(2)).await.unwrap());
    announced(&mut deletions).await;
}

#[cfg(feature = "postgres")]
async fn announced(rx: &mut tokio::sync::watch::Receiver<u64>) {
    tokio::time::timeout(std::time::Duration::from_secs(10), rx.changed())
        .await
        .expect("announced")
        .unwrap();
}
