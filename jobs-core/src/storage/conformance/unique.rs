//! Unique keys: an insert under a key that a job holds answers that job, until the key's
//! window ends or the holder is in a state that does not count; `replace` gives a
//! never-claimed holder the new time and payload; expired keys are pruned.

use super::*;
use crate::UniqueStates;
use crate::storage::{Admitted, UniqueClaim};

conformance!(
    a_held_key_answers_its_holder_until_its_window_ends,
    a_holder_in_a_state_that_does_not_count_gives_up_its_key,
    replace_changes_only_a_holder_never_claimed,
    a_batch_stores_each_key_once_and_skips_continuations_of_duplicates,
    prune_drops_only_expired_keys,
);

/// Key `n`, held until `at(until)`, counting `states`.
fn key(n: u128, until: i64, states: UniqueStates, replace: bool) -> UniqueClaim {
    UniqueClaim {
        key: Uuid::from_u128(n),
        until: at(until),
        states,
        replace,
    }
}

/// A job with key `n` (held for 100 s from its creation at `at(created)`).
fn unique_job(job_id: u128, n: u128, created: i64) -> NewJob {
    NewJob {
        created_at: at(created),
        run_at: at(created),
        unique: Some(key(n, created + 100, UniqueStates::Successful, false)),
        ..job(id(job_id), "unique")
    }
}

async fn a_held_key_answers_its_holder_until_its_window_ends<S: Storage>(s: &S) {
    assert_eq!(
        s.jobs_admit(&[unique_job(1, 7, 0)]).await.unwrap(),
        [Admitted::Stored]
    );
    assert_eq!(
        s.jobs_admit(&[unique_job(2, 7, 99)]).await.unwrap(),
        [Admitted::Duplicate(id(1))]
    );
    assert!(s.job_get(id(2)).await.unwrap().is_none());
    // Another key is another job.
    assert_eq!(
        s.jobs_admit(&[unique_job(3, 8, 99)]).await.unwrap(),
        [Admitted::Stored]
    );
    // At the end of the window the key is free, and the new job takes it.
    assert_eq!(
        s.jobs_admit(&[unique_job(4, 7, 100)]).await.unwrap(),
        [Admitted::Stored]
    );
    assert_eq!(
        s.jobs_admit(&[unique_job(5, 7, 150)]).await.unwrap(),
        [Admitted::Duplicate(id(4))]
    );
}

async fn a_holder_in_a_state_that_does_not_count_gives_up_its_key<S: Storage>(s: &S) {
    s.jobs_admit(&[unique_job(1, 7, 0)]).await.unwrap();
    assert!(s.job_delete(id(1), at(1)).await.unwrap());
    let all = NewJob {
        unique: Some(key(7, 110, UniqueStates::All, false)),
        ..unique_job(2, 7, 10)
    };
    assert_eq!(
        s.jobs_admit(&[all]).await.unwrap(),
        [Admitted::Duplicate(id(1))],
        "a deleted holder counts for `All`"
    );
    assert_eq!(
        s.jobs_admit(&[unique_job(3, 7, 10)]).await.unwrap(),
        [Admitted::Stored],
        "and not for `Successful`"
    );
    assert_eq!(state(s, id(3)).await, JobState::Enqueued);
}

async fn replace_changes_only_a_holder_never_claimed<S: Storage>(s: &S) {
    let scheduled = NewJob {
        state: JobState::Scheduled,
        run_at: at(60),
        ..unique_job(1, 7, 0)
    };
    s.jobs_admit(&[scheduled]).await.unwrap();
    let replacing = |job_id, payload: &str, run_at| NewJob {
        payload: payload.to_owned(),
        state: JobState::Scheduled,
        run_at: at(run_at),
        unique: Some(key(7, 105, UniqueStates::Successful, true)),
        ..unique_job(job_id, 7, 5)
    };
    assert_eq!(
        s.jobs_admit(&[replacing(2, r#"{"n":2}"#, 90)])
            .await
            .unwrap(),
        [Admitted::Replaced(id(1))]
    );
    let stored = get(s, id(1)).await;
    assert_eq!(stored.payload, serde_json::json!({"n": 2}));
    assert_eq!((stored.state, stored.run_at), (JobState::Scheduled, at(90)));
    assert_eq!(stored.history.len(), 2, "{:?}", stored.history);
    assert!(s.job_get(id(2)).await.unwrap().is_none());

    // Once claimed, it is a duplicate left as it is.
    let claimed = s.jobs_claim(claim("a", at(95), 10)).await.unwrap();
    assert_eq!(ids(&claimed), [id(1)]);
    assert_eq!(
        s.jobs_admit(&[replacing(3, r#"{"n":3}"#, 200)])
            .await
            .unwrap(),
        [Admitted::Duplicate(id(1))]
    );
    let stored = get(s, id(1)).await;
    assert_eq!(stored.payload, serde_json::json!({"n": 2}));
    assert_eq!(stored.state, JobState::Processing);
}

async fn a_batch_stores_each_key_once_and_skips_continuations_of_duplicates<S: Storage>(s: &S) {
    s.jobs_admit(&[unique_job(1, 7, 0)]).await.unwrap();
    let admitted = s
        .jobs_admit(&[
            unique_job(2, 7, 1),
            child(id(3), id(2), false),
            unique_job(4, 8, 1),
            unique_job(5, 8, 1),
            job(id(6), "plain"),
        ])
        .await
        .unwrap();
    assert_eq!(
        admitted,
        [
            Admitted::Duplicate(id(1)),
            Admitted::Skipped,
            Admitted::Stored,
            Admitted::Duplicate(id(4)),
            Admitted::Stored,
        ]
    );
    for (n, stored) in [(2, false), (3, false), (4, true), (5, false), (6, true)] {
        assert_eq!(
            s.job_get(id(n)).await.unwrap().is_some(),
            stored,
            "job {n} stored"
        );
    }
}

async fn prune_drops_only_expired_keys<S: Storage>(s: &S) {
    for n in 1..=5 {
        // Keys held until at(100 + n).
        let created = i64::try_from(n).unwrap();
        s.jobs_admit(&[unique_job(n, n, created)]).await.unwrap();
    }
    assert_eq!(s.unique_prune(at(103), 2).await.unwrap(), 2);
    assert_eq!(s.unique_prune(at(103), 10).await.unwrap(), 1);
    assert_eq!(s.unique_prune(at(103), 10).await.unwrap(), 0);
    // Key 4 is still held: an insert under it is a duplicate.
    assert_eq!(
        s.jobs_admit(&[unique_job(9, 4, 50)]).await.unwrap(),
        [Admitted::Duplicate(id(4))]
    );
}
