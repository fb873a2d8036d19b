//! Finishing attempts: the completion fence (owner, attempt, `Processing`), the outcomes,
//! release (attempt not counted) and rescue of expired leases.

use super::*;

conformance!(
    result_of_a_stale_owner_changes_nothing,
    result_of_a_stale_attempt_changes_nothing,
    result_delivered_twice_counts_once,
    result_after_delete_release_or_rescue_changes_nothing,
    success_sets_state_and_history,
    success_stores_its_result_and_only_a_success_does,
    a_continuation_reads_its_parents_result,
    retry_reschedules_with_the_error,
    final_failure_keeps_the_error,
    a_failures_backtrace_is_stored_capped,
    release_of_some_ids_only,
    release_of_all_of_a_servers_jobs,
    expired_finds_exactly_the_lapsed_leases,
    rescue_is_fenced_on_the_dead_owner,
);

/// An error `message` caused by another one: a failure with a source.
#[derive(Debug)]
struct Caused(&'static str, std::io::Error);

impl std::fmt::Display for Caused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Caused {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.1)
    }
}

fn failure(message: &'static str) -> Failure {
    Failure::from_error(&Caused(message, std::io::Error::other("disk full")))
}

fn retry(seconds: i64) -> Outcome {
    Outcome::Retry {
        at: at(seconds),
        failure: Failure::new("try again"),
    }
}

async fn result_of_a_stale_owner_changes_nothing<S: Storage>(s: &S) {
    insert_and_claim(s, &[job(id(1), "fenced")], "a").await;
    let before = get(s, id(1)).await;
    s.jobs_complete(&[done(id(1), "b", 1, Outcome::Succeeded)])
        .await
        .unwrap();
    let after = get(s, id(1)).await;
    assert_eq!(after.state, JobState::Processing);
    assert_eq!(after.owner.as_deref(), Some("a"));
    assert_eq!(after.history.len(), before.history.len());
    assert_eq!(after.updated_at, before.updated_at);
}

async fn result_of_a_stale_attempt_changes_nothing<S: Storage>(s: &S) {
    insert_and_claim(s, &[job(id(1), "fenced")], "a").await;
    // Attempt 1 was rescued and the same server claimed attempt 2.
    s.jobs_complete(&[done(id(1), "a", 1, retry(2))])
        .await
        .unwrap();
    let claimed = s.jobs_claim(claim("a", at(2), 1)).await.unwrap();
    assert_eq!(claimed[0].attempt, 2);
    let before = get(s, id(1)).await;
    s.jobs_complete(&[done(id(1), "a", 1, Outcome::Succeeded)])
        .await
        .unwrap();
    let after = get(s, id(1)).await;
    assert_eq!((after.state, after.attempt), (JobState::Processing, 2));
    assert_eq!(after.history.len(), before.history.len());
    // The current attempt's result still lands.
    s.jobs_complete(&[done(id(1), "a", 2, Outcome::Succeeded)])
        .await
        .unwrap();
    assert_eq!(state(s, id(1)).await, JobState::Succeeded);
}

async fn result_delivered_twice_counts_once<S: Storage>(s: &S) {
    insert_and_claim(s, &[job(id(1), "twice"), job(id(2), "twice")], "a").await;
    let success = done(id(1), "a", 1, Outcome::Succeeded);
    // Twice in one batch, then again in a later one, then contradicted.
    s.jobs_complete(&[success.clone(), success.clone()])
        .await
        .unwrap();
    s.jobs_complete(&[Completion {
        at: at(20),
        ..success.clone()
    }])
    .await
    .unwrap();
    s.jobs_complete(&[done(
        id(1),
        "a",
        1,
        Outcome::Failed {
            failure: Failure::new("late"),
        },
    )])
    .await
    .unwrap();
    let stored = get(s, id(1)).await;
    assert_eq!(
        (stored.state, stored.updated_at),
        (JobState::Succeeded, at(10))
    );
    assert_eq!(stored.last_error, None);
    let finished: Vec<_> = stored
        .history
        .iter()
        .filter(|entry| entry.state == JobState::Succeeded)
        .collect();
    assert_eq!(finished.len(), 1, "history: {:?}", stored.history);
    assert_eq!(stored.history.len(), 3, "created, claimed, succeeded");
    assert_eq!(state(s, id(2)).await, JobState::Processing);
}

async fn result_after_delete_release_or_rescue_changes_nothing<S: Storage>(s: &S) {
    let batch = [
        job(id(1), "deleted"),
        job(id(2), "released"),
        job(id(3), "rescued"),
    ];
    insert_and_claim(s, &batch, "a").await;
    assert!(s.job_delete(id(1), at(2)).await.unwrap());
    assert_eq!(
        s.jobs_release("a", Some(&[fence(id(2), 1)]), at(2))
            .await
            .unwrap(),
        1
    );
    let expired = s.jobs_expired(at(100), off(at(100)), 10).await.unwrap();
    assert_eq!(
        expired.len(),
        1,
        "the deleted job has no lease, the released one no owner"
    );
    assert_eq!(expired[0].id, id(3));
    s.jobs_complete(&[done(id(3), "a", 1, retry(200))])
        .await
        .unwrap();
    let before = [
        get(s, id(1)).await,
        get(s, id(2)).await,
        get(s, id(3)).await,
    ];
    let late: Vec<Completion> = [1, 2, 3]
        .map(|n| done(id(n), "a", 1, Outcome::Succeeded))
        .to_vec();
    s.jobs_complete(&late).await.unwrap();
    let after = [
        get(s, id(1)).await,
        get(s, id(2)).await,
        get(s, id(3)).await,
    ];
    let expected = [JobState::Deleted, JobState::Enqueued, JobState::Scheduled];
    for ((before, after), expected) in before.iter().zip(&after).zip(expected) {
        assert_eq!(after.state, expected, "job {}", after.id);
        assert_eq!(after.attempt, before.attempt);
        assert_eq!(after.history.len(), before.history.len());
        assert_eq!(after.updated_at, before.updated_at);
    }
}

async fn success_sets_state_and_history<S: Storage>(s: &S) {
    insert_and_claim(s, &[job(id(1), "ok")], "a").await;
    s.jobs_complete(&[done(id(1), "a", 1, Outcome::Succeeded)])
        .await
        .unwrap();
    let stored = get(s, id(1)).await;
    assert_eq!((stored.state, stored.attempt), (JobState::Succeeded, 1));
    assert_eq!((stored.owner, stored.last_error), (None, None));
    assert_eq!((stored.run_at, stored.updated_at), (at(0), at(10)));
    let last = stored.history.last().unwrap();
    assert_eq!(
        (last.state, last.at, last.attempt),
        (JobState::Succeeded, at(10), 1)
    );
    assert_eq!((last.server.as_deref(), &last.error), (Some("a"), &None));
    assert!(
        s.jobs_expired(at(1000), off(at(1000)), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn success_stores_its_result_and_only_a_success_does<S: Storage>(s: &S) {
    insert_and_claim(s, &[job(id(1), "summarize"), job(id(2), "stale")], "a").await;
    let summary = r#"{"title":"Q3","words":120}"#;
    s.jobs_complete(&[
        Completion {
            result: Some(summary.to_owned()),
            ..done(id(1), "a", 1, Outcome::Succeeded)
        },
        // A stale claim's result is not stored.
        Completion {
            token: 9,
            result: Some("\"stale\"".to_owned()),
            ..done(id(2), "a", 1, Outcome::Succeeded)
        },
    ])
    .await
    .unwrap();
    assert_eq!(
        get(s, id(1)).await.result,
        Some(serde_json::json!({ "title": "Q3", "words": 120 }))
    );
    assert_eq!(get(s, id(2)).await.result, None);
    // Run again and failed: the last success's result stays.
    s.job_requeue(id(1), at(20), off(at(20))).await.unwrap();
    let again = s.jobs_claim(claim("a", at(20), 1)).await.unwrap();
    s.jobs_complete(&[Completion {
        token: again[0].token,
        result: Some("\"ignored\"".to_owned()),
        ..done(
            id(1),
            "a",
            1,
            Outcome::Failed {
                failure: failure("boom"),
            },
        )
    }])
    .await
    .unwrap();
    let failed = get(s, id(1)).await;
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(
        failed.result,
        Some(serde_json::json!({ "title": "Q3", "words": 120 }))
    );
}

async fn a_continuation_reads_its_parents_result<S: Storage>(s: &S) {
    s.jobs_insert(&[
        job(id(1), "summarize"),
        child(id(2), id(1), false),
        job(id(3), "alone"),
        job(id(4), "silent"),
        child(id(5), id(4), false),
    ])
    .await
    .unwrap();
    assert_eq!(s.job_parent_result(id(2)).await.unwrap(), Some(None));
    let claimed = s.jobs_claim(claim("a", at(1), 10)).await.unwrap();
    assert_eq!(claimed.len(), 3, "the continuations wait");
    s.jobs_complete(&[
        Completion {
            result: Some(r#"{"words":120}"#.to_owned()),
            ..done(id(1), "a", 1, Outcome::Succeeded)
        },
        done(id(4), "a", 1, Outcome::Succeeded),
    ])
    .await
    .unwrap();
    assert_eq!(
        s.job_parent_result(id(2)).await.unwrap(),
        Some(Some(r#"{"words":120}"#.to_owned()))
    );
    assert_eq!(
        s.job_parent_result(id(5)).await.unwrap(),
        Some(None),
        "no result"
    );
    assert_eq!(s.job_parent_result(id(3)).await.unwrap(), None, "no parent");
    assert_eq!(s.job_parent_result(id(99)).await.unwrap(), None, "no job");
}

async fn retry_reschedules_with_the_error<S: Storage>(s: &S) {
    insert_and_claim(s, &[job(id(1), "flaky")], "a").await;
    let failure = failure("boom");
    s.jobs_complete(&[done(
        id(1),
        "a",
        1,
        Outcome::Retry {
            at: at(300),
            failure: failure.clone(),
        },
    )])
    .await
    .unwrap();
    let stored = get(s, id(1)).await;
    assert_eq!(
        (stored.state, stored.run_at),
        (JobState::Scheduled, at(300))
    );
    assert_eq!((stored.attempt, stored.owner.as_deref()), (1, None));
    assert!(stored.last_error.as_deref().unwrap().contains("boom"));
    let last = stored.history.last().unwrap();
    assert_eq!((last.state, last.attempt), (JobState::Scheduled, 1));
    let error = last.error.as_ref().expect("the attempt's error");
    assert_eq!(error.message, failure.message());
    assert_eq!(error.sources, ["disk full"]);
    assert_eq!(error.backtrace, None, "none was captured");
    assert!(
        s.jobs_claim(claim("a", at(299), 1))
            .await
            .unwrap()
            .is_empty()
    );
    let again = s.jobs_claim(claim("b", at(300), 1)).await.unwrap();
    assert_eq!(again[0].attempt, 2);
}

async fn final_failure_keeps_the_error<S: Storage>(s: &S) {
    insert_and_claim(s, &[job(id(1), "doomed")], "a").await;
    s.jobs_complete(&[done(
        id(1),
        "a",
        1,
        Outcome::Failed {
            failure: Failure::new("gave up"),
        },
    )])
    .await
    .unwrap();
    let stored = get(s, id(1)).await;
    assert_eq!(
        (stored.state, stored.attempt, stored.run_at),
        (JobState::Failed, 1, at(0))
    );
    assert_eq!(stored.last_error.as_deref(), Some("gave up"));
    let last = stored.history.last().unwrap();
    assert_eq!((last.state, last.attempt), (JobState::Failed, 1));
    assert_eq!(last.error.as_ref().unwrap().message, "gave up");
    assert!(
        s.jobs_claim(claim("a", at(1000), 1))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_failures_backtrace_is_stored_capped<S: Storage>(s: &S) {
    insert_and_claim(s, &[job(id(1), "short"), job(id(2), "long")], "a").await;
    let short = "   0: app::jobs::short\n             at ./src/jobs.rs:12:5\n   1: é";
    // Frames of 20 bytes, 40 KiB in all: more than the 16 KiB kept.
    let long: String = (0..2048).map(|i| format!("{i:>4}: app::frame\n")).collect();
    assert!(long.len() > 2 * MAX_BACKTRACE_BYTES);
    s.jobs_complete(&[
        done(
            id(1),
            "a",
            1,
            Outcome::Retry {
                at: at(300),
                failure: failure("boom").with_backtrace(short),
            },
        ),
        done(
            id(2),
            "a",
            1,
            Outcome::Failed {
                failure: Failure::new("gave up").with_backtrace(long.clone()),
            },
        ),
    ])
    .await
    .unwrap();
    let error = |job: JobInfo| job.history.last().unwrap().error.clone().unwrap();
    let first = error(get(s, id(1)).await);
    assert_eq!(first.backtrace.as_deref(), Some(short));
    assert_eq!(first.sources, ["disk full"]);
    let second = error(get(s, id(2)).await);
    let kept = second.backtrace.expect("the long backtrace, cut");
    assert!(
        kept.starts_with(&long[..MAX_BACKTRACE_BYTES]),
        "kept from the top"
    );
    assert!(
        kept.ends_with(&format!("… [cut: {} bytes in all]", long.len())),
        "says it was cut: {}",
        &kept[kept.len() - 60..]
    );
    assert!(kept.len() < MAX_BACKTRACE_BYTES + 100);
}

async fn release_of_some_ids_only<S: Storage>(s: &S) {
    insert_and_claim(s, &[job(id(1), "mine"), job(id(2), "mine")], "a").await;
    s.jobs_insert(&[job(id(3), "theirs")]).await.unwrap();
    s.jobs_claim(claim("b", at(1), 10)).await.unwrap();
    // Another server's job is not released by this one.
    assert_eq!(
        s.jobs_release("a", Some(&[fence(id(2), 1), fence(id(3), 1)]), at(5))
            .await
            .unwrap(),
        1
    );
    let released = get(s, id(2)).await;
    assert_eq!((released.state, released.attempt), (JobState::Enqueued, 0));
    assert_eq!((released.owner, released.run_at), (None, at(5)));
    let last = released.history.last().unwrap();
    assert_eq!(
        (last.state, last.at, last.attempt),
        (JobState::Enqueued, at(5), 0)
    );
    assert_eq!(last.server.as_deref(), Some("a"));
    assert_eq!(state(s, id(1)).await, JobState::Processing);
    assert_eq!(get(s, id(3)).await.owner.as_deref(), Some("b"));
    let again = s.jobs_claim(claim("c", at(5), 10)).await.unwrap();
    assert_eq!(
        (again.len(), again[0].attempt),
        (1, 1),
        "release does not count"
    );
}

async fn release_of_all_of_a_servers_jobs<S: Storage>(s: &S) {
    insert_and_claim(s, &[job(id(1), "mine"), job(id(2), "mine")], "a").await;
    s.jobs_insert(&[job(id(3), "theirs"), job(id(4), "done")])
        .await
        .unwrap();
    s.jobs_claim(claim("b", at(1), 1)).await.unwrap();
    s.jobs_claim(claim("a", at(1), 1)).await.unwrap();
    s.jobs_complete(&[done(id(4), "a", 1, Outcome::Succeeded)])
        .await
        .unwrap();
    assert_eq!(s.jobs_release("a", None, at(5)).await.unwrap(), 2);
    for n in [1, 2] {
        let released = get(s, id(n)).await;
        assert_eq!((released.state, released.attempt), (JobState::Enqueued, 0));
    }
    assert_eq!(state(s, id(3)).await, JobState::Processing);
    assert_eq!(state(s, id(4)).await, JobState::Succeeded);
    assert_eq!(s.jobs_release("a", None, at(6)).await.unwrap(), 0);
}

async fn expired_finds_exactly_the_lapsed_leases<S: Storage>(s: &S) {
    s.jobs_insert(&[
        NewJob {
            max_retries: Some(2),
            ..job(id(1), "early")
        },
        job(id(2), "late"),
        job(id(3), "waiting"),
        job(id(4), "finished"),
    ])
    .await
    .unwrap();
    s.jobs_claim(claim("a", at(1), 1)).await.unwrap(); // id 1, lease at(61)
    s.jobs_claim(claim("b", at(30), 1)).await.unwrap(); // id 2, lease at(90)
    s.jobs_claim(claim("b", at(30), 1)).await.unwrap(); // id 3 …
    s.jobs_complete(&[done(id(3), "b", 1, Outcome::Succeeded)])
        .await
        .unwrap(); // … finished.
    assert!(
        s.jobs_expired(at(60), off(at(60)), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let expired = s.jobs_expired(at(62), off(at(62)), 10).await.unwrap();
    assert_eq!(expired.len(), 1);
    let e = &expired[0];
    assert_eq!(
        (e.id, e.owner.as_str(), e.token, e.attempt),
        (id(1), "a", 1, 1)
    );
    assert_eq!((e.ahead, e.rescues), (false, 0));
    let mut both: Vec<JobId> = s
        .jobs_expired(at(100), off(at(100)), 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    both.sort_by_key(JobId::as_uuid);
    assert_eq!(both, [id(1), id(2)]);
    assert_eq!(
        s.jobs_expired(at(100), off(at(100)), 1)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn rescue_is_fenced_on_the_dead_owner<S: Storage>(s: &S) {
    insert_and_claim(s, &[job(id(1), "orphan"), job(id(2), "back")], "dead").await;
    let expired = s.jobs_expired(at(100), off(at(100)), 10).await.unwrap();
    assert!(
        expired
            .iter()
            .all(|e| (e.owner.as_str(), e.attempt) == ("dead", 1))
    );
    assert_eq!(expired.len(), 2);
    let rescue = |n, attempt: u32, seconds| Completion {
        at: at(seconds),
        ..done(id(n), "dead", attempt, retry(seconds))
    };
    // Two servers rescue at once: the first wins, the second changes nothing.
    s.jobs_complete(&[rescue(1, 1, 100)]).await.unwrap();
    s.jobs_complete(&[rescue(1, 1, 101)]).await.unwrap();
    let stored = get(s, id(1)).await;
    assert_eq!(
        (stored.state, stored.run_at),
        (JobState::Scheduled, at(100))
    );
    assert_eq!(stored.history.len(), 3, "created, claimed, rescued once");
    // A live server claims attempt 2; the dead one's late result and a stale rescue
    // of attempt 1 change nothing.
    let claimed = s.jobs_claim(claim("live", at(100), 1)).await.unwrap();
    assert_eq!(claimed[0].attempt, 2);
    s.jobs_complete(&[
        done(id(1), "dead", 1, Outcome::Succeeded),
        rescue(1, 1, 102),
    ])
    .await
    .unwrap();
    let stored = get(s, id(1)).await;
    assert_eq!((stored.state, stored.attempt), (JobState::Processing, 2));
    assert_eq!(stored.owner.as_deref(), Some("live"));
    assert_eq!(stored.history.len(), 4);
    // The owner it was read with released job 2 (its attempt not counted) and a live
    // server claimed it: same attempt number, other owner. The rescue read before the
    // release must not fail the live attempt.
    s.jobs_release("dead", Some(&[fence(id(2), 1)]), at(101))
        .await
        .unwrap();
    let claimed = s.jobs_claim(claim("live", at(101), 1)).await.unwrap();
    assert_eq!((claimed[0].id, claimed[0].attempt), (id(2), 1));
    s.jobs_complete(&[rescue(2, 1, 102)]).await.unwrap();
    let live = get(s, id(2)).await;
    assert_eq!((live.state, live.attempt), (JobState::Processing, 1));
    assert_eq!(live.owner.as_deref(), Some("live"));
}
