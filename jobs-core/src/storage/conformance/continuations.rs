//! Continuations: what a parent's delete, success and failure do to the jobs awaiting it,
//! and how a delete is seen by the running attempt (`jobs_deleted_among`).

use super::*;

conformance!(
    delete_cascades_through_awaiting_continuations,
    delete_matching_cascades_and_counts_the_matched,
    delete_of_a_running_job_keeps_its_owner,
    success_releases_children_and_drops_on_failure_ones,
    final_failure_releases_only_on_failure_children,
    retry_releases_no_child,
);

/// 1 → 2 → 3 (a chain of depth 2), 1 →(on failure) 4, and 5 → 6 beside it.
async fn family<S: Storage>(s: &S) {
    s.jobs_insert(&[
        job(id(1), "parent"),
        child(id(2), id(1), false),
        child(id(3), id(2), false),
        child(id(4), id(1), true),
        job(id(5), "other"),
        child(id(6), id(5), false),
    ])
    .await
    .unwrap();
}

async fn delete_cascades_through_awaiting_continuations<S: Storage>(s: &S) {
    family(s).await;
    assert!(s.job_delete(id(1), at(7)).await.unwrap());
    for n in 1..=4 {
        let deleted = get(s, id(n)).await;
        assert_eq!(deleted.state, JobState::Deleted, "job {n}");
        assert_eq!(deleted.updated_at, at(7));
        let last = deleted.history.last().unwrap();
        assert_eq!((last.state, last.at), (JobState::Deleted, at(7)));
    }
    assert_eq!(state(s, id(5)).await, JobState::Enqueued);
    assert_eq!(state(s, id(6)).await, JobState::Awaiting);
    let all: Vec<JobId> = (1..=6).map(id).chain([id(99)]).collect();
    let mut deleted = s.jobs_deleted_among(&all).await.unwrap();
    deleted.sort_by_key(JobId::as_uuid);
    assert_eq!(deleted, [id(1), id(2), id(3), id(4)]);
    // Deleting again finds the job but writes nothing; an unknown id is not found.
    let history = get(s, id(1)).await.history.len();
    assert!(s.job_delete(id(1), at(8)).await.unwrap());
    assert_eq!(get(s, id(1)).await.history.len(), history);
    assert_eq!(get(s, id(1)).await.updated_at, at(7));
    assert!(!s.job_delete(id(99), at(8)).await.unwrap());
}

async fn delete_matching_cascades_and_counts_the_matched<S: Storage>(s: &S) {
    family(s).await;
    s.jobs_insert(&[job(id(7), "parent")]).await.unwrap();
    let query = JobQuery {
        name: Some("parent".to_owned()),
        ..JobQuery::default()
    };
    assert_eq!(s.jobs_delete_matching(&query, at(7)).await.unwrap(), 2);
    for n in [1, 2, 3, 4, 7] {
        assert_eq!(state(s, id(n)).await, JobState::Deleted, "job {n}");
    }
    assert_eq!(state(s, id(5)).await, JobState::Enqueued);
    assert_eq!(state(s, id(6)).await, JobState::Awaiting);
    assert_eq!(s.jobs_delete_matching(&query, at(8)).await.unwrap(), 0);
}

async fn delete_of_a_running_job_keeps_its_owner<S: Storage>(s: &S) {
    insert_and_claim(s, &[job(id(1), "running"), job(id(2), "running")], "a").await;
    assert!(s.job_delete(id(1), at(5)).await.unwrap());
    let deleted = get(s, id(1)).await;
    assert_eq!(deleted.state, JobState::Deleted);
    assert_eq!(deleted.owner.as_deref(), Some("a"));
    assert_eq!(
        s.jobs_deleted_among(&[id(1), id(2)]).await.unwrap(),
        [id(1)]
    );
    let expired = s.jobs_expired(at(1000), off(at(1000)), 10).await.unwrap();
    assert_eq!(expired.iter().map(|e| e.id).collect::<Vec<_>>(), [id(2)]);
}

async fn success_releases_children_and_drops_on_failure_ones<S: Storage>(s: &S) {
    family(s).await;
    let claimed = s.jobs_claim(claim("a", at(1), 10)).await.unwrap();
    assert_eq!(ids(&claimed), [id(1), id(5)], "continuations wait");
    s.jobs_complete(&[done(id(1), "a", 1, Outcome::Succeeded)])
        .await
        .unwrap();
    let released = get(s, id(2)).await;
    assert_eq!(
        (released.state, released.run_at),
        (JobState::Enqueued, at(10))
    );
    let last = released.history.last().unwrap();
    assert_eq!((last.state, last.at), (JobState::Enqueued, at(10)));
    let dropped = get(s, id(4)).await;
    assert_eq!(dropped.state, JobState::Deleted);
    assert_eq!(dropped.history.last().unwrap().state, JobState::Deleted);
    // Only the direct continuations move; the grandchild waits for its own parent.
    assert_eq!(state(s, id(3)).await, JobState::Awaiting);
    assert_eq!(state(s, id(6)).await, JobState::Awaiting);
    let next = s.jobs_claim(claim("a", at(10), 10)).await.unwrap();
    assert_eq!(ids(&next), [id(2)]);
}

async fn final_failure_releases_only_on_failure_children<S: Storage>(s: &S) {
    family(s).await;
    s.jobs_claim(claim("a", at(1), 10)).await.unwrap();
    let failed = Outcome::Failed {
        failure: Failure::new("no"),
    };
    s.jobs_complete(&[done(id(1), "a", 1, failed)])
        .await
        .unwrap();
    let released = get(s, id(4)).await;
    assert_eq!(
        (released.state, released.run_at),
        (JobState::Enqueued, at(10))
    );
    assert_eq!(released.history.last().unwrap().state, JobState::Enqueued);
    assert_eq!(state(s, id(2)).await, JobState::Awaiting);
    assert_eq!(state(s, id(3)).await, JobState::Awaiting);
}

async fn retry_releases_no_child<S: Storage>(s: &S) {
    family(s).await;
    s.jobs_claim(claim("a", at(1), 10)).await.unwrap();
    let retry = Outcome::Retry {
        at: at(100),
        failure: Failure::new("again"),
    };
    s.jobs_complete(&[done(id(1), "a", 1, retry)])
        .await
        .unwrap();
    for n in [2, 3, 4] {
        assert_eq!(state(s, id(n)).await, JobState::Awaiting, "job {n}");
    }
}
