//! Events sent to jobs and the jobs' waits for them: a send resumes every job waiting,
//! a wait sees an event sent before it began (within the window), a wait stored just
//! after a send still finds it, and a wait times out at its deadline.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::*;
use crate::storage::{EventWait, WaitState};

conformance!(
    a_send_resumes_every_job_waiting_for_its_name_and_key,
    a_wait_sees_an_event_sent_before_it_began_within_the_window,
    an_event_sent_as_the_job_goes_to_wait_resumes_it_when_the_wait_is_stored,
    a_wait_times_out_at_its_deadline_and_keeps_its_first_deadline,
    a_wait_of_a_claim_no_longer_held_stores_nothing,
    a_job_that_no_longer_waits_is_not_resumed,
    signals_prune_removes_events_sent_before_the_cutoff,
);

fn approval(key: &str) -> EventWait {
    EventWait {
        name: "approval".to_owned(),
        key: key.to_owned(),
    }
}

/// The completion of attempt 1 of `id` by `a`: it waits for `wait` until `until`.
fn waits(id: JobId, wait: &EventWait, until: DateTime<Utc>) -> Completion {
    done(
        id,
        "a",
        1,
        Outcome::Sleeping {
            until,
            note: format!("waits for `{}`", wait.key),
            wait: Some(wait.clone()),
        },
    )
}

/// The stored outcome of `wait` of job `id`, as JSON.
async fn outcome<S: Storage>(s: &S, id: JobId, wait: &EventWait) -> Option<Value> {
    let stored = s.step_get(id, &wait.outcome_step()).await.unwrap()?;
    Some(serde_json::from_str(&stored).unwrap())
}

fn ended(state: WaitState) -> Value {
    match state {
        WaitState::Ended(outcome) => serde_json::from_str(&outcome).unwrap(),
        WaitState::Pending { until } => panic!("the wait is pending until {until}"),
    }
}

/// Events are kept from `since` on: a week before `at(0)`.
fn since() -> DateTime<Utc> {
    at(0) - Duration::days(7)
}

async fn a_send_resumes_every_job_waiting_for_its_name_and_key<S: Storage>(s: &S) {
    let (draft, other) = (approval("draft-1"), approval("draft-2"));
    insert_and_claim(s, &[job(id(1), "w"), job(id(2), "w"), job(id(3), "w")], "a").await;
    s.jobs_complete(&[
        waits(id(1), &draft, at(100)),
        waits(id(2), &draft, at(200)),
        waits(id(3), &other, at(100)),
    ])
    .await
    .unwrap();
    let waiting = get(s, id(2)).await;
    assert_eq!(
        (waiting.state, waiting.run_at),
        (JobState::Scheduled, at(200))
    );
    let awaited = waiting.waiting_for_event.expect("it waits for an event");
    assert_eq!(
        (awaited.name.as_str(), awaited.key.as_str(), awaited.until),
        ("approval", "draft-1", at(200))
    );

    let resumed = s
        .signal_send(&draft, r#"{"by":"ada"}"#, since(), at(20))
        .await
        .unwrap();
    assert_eq!(resumed, 2, "both jobs waiting for draft-1, not the other");
    for job in [id(1), id(2)] {
        let info = get(s, job).await;
        assert_eq!((info.state, info.run_at), (JobState::Enqueued, at(20)));
        assert_eq!(info.waiting_for_event, None);
        assert_eq!(info.attempt, 0, "the wait was given back");
        let last = info.history.last().unwrap();
        assert_eq!(
            (last.state, last.at, last.server.as_deref()),
            (JobState::Enqueued, at(20), None)
        );
        let message = &last.error.as_ref().unwrap().message;
        assert!(
            message.contains("approval") && message.contains("draft-1"),
            "{message}"
        );
        assert_eq!(
            outcome(s, job, &draft).await,
            Some(json!({"event": {"by": "ada"}}))
        );
    }
    assert_eq!(state(s, id(3)).await, JobState::Scheduled);
    assert_eq!(outcome(s, id(3), &other).await, None);
    assert_eq!(
        s.signal_send(&draft, r#"{"by":"bob"}"#, since(), at(21))
            .await
            .unwrap(),
        0,
        "nobody waits any more"
    );
    assert_eq!(
        outcome(s, id(1), &draft).await,
        Some(json!({"event": {"by": "ada"}})),
        "a later event changes nothing recorded"
    );
}

async fn a_wait_sees_an_event_sent_before_it_began_within_the_window<S: Storage>(s: &S) {
    let (early, old) = (approval("early"), approval("old"));
    assert_eq!(
        s.signal_send(&old, "1", since(), at(-1000)).await.unwrap(),
        0
    );
    assert_eq!(
        s.signal_send(&early, r#""first""#, since(), at(0))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        s.signal_send(&early, r#""second""#, since(), at(0))
            .await
            .unwrap(),
        0
    );
    let claimed = insert_and_claim(s, &[job(id(1), "w")], "a").await;
    let first = claimed[0].fence();
    let state = s
        .signal_wait(first, &early, Duration::hours(1), since(), at(1))
        .await
        .unwrap();
    assert_eq!(
        ended(state),
        json!({"event": "first"}),
        "the earliest event counts"
    );
    assert_eq!(
        outcome(s, id(1), &early).await,
        Some(json!({"event": "first"}))
    );
    // An event sent before the window began is not seen.
    let state = s
        .signal_wait(first, &old, Duration::hours(1), at(-10), at(1))
        .await
        .unwrap();
    assert_eq!(
        state,
        WaitState::Pending {
            until: at(1) + Duration::hours(1)
        }
    );
}

async fn an_event_sent_as_the_job_goes_to_wait_resumes_it_when_the_wait_is_stored<S: Storage>(
    s: &S,
) {
    let draft = approval("draft-9");
    let claimed = insert_and_claim(s, &[job(id(1), "w")], "a").await;
    // The job found no event and decides to wait…
    let state = s
        .signal_wait(
            claimed[0].fence(),
            &draft,
            Duration::seconds(60),
            since(),
            at(1),
        )
        .await
        .unwrap();
    assert_eq!(state, WaitState::Pending { until: at(61) });
    // …the event arrives before its wait is stored: nobody waits yet…
    assert_eq!(
        s.signal_send(&draft, "42", since(), at(2)).await.unwrap(),
        0
    );
    // …and storing the wait finds it.
    s.jobs_complete(&[waits(id(1), &draft, at(61))])
        .await
        .unwrap();
    let info = get(s, id(1)).await;
    assert_eq!(
        info.state,
        JobState::Enqueued,
        "resumed at once, not at its deadline"
    );
    assert_eq!(info.waiting_for_event, None);
    assert_eq!(outcome(s, id(1), &draft).await, Some(json!({"event": 42})));
}

async fn a_wait_times_out_at_its_deadline_and_keeps_its_first_deadline<S: Storage>(s: &S) {
    let draft = approval("draft-3");
    let claimed = insert_and_claim(s, &[job(id(1), "w")], "a").await;
    let state = s
        .signal_wait(
            claimed[0].fence(),
            &draft,
            Duration::seconds(60),
            since(),
            at(1),
        )
        .await
        .unwrap();
    assert_eq!(state, WaitState::Pending { until: at(61) });
    s.jobs_complete(&[waits(id(1), &draft, at(61))])
        .await
        .unwrap();
    assert!(
        s.jobs_claim(claim("b", at(60), 10))
            .await
            .unwrap()
            .is_empty()
    );
    let again = s.jobs_claim(claim("b", at(61), 10)).await.unwrap();
    assert_eq!(again.len(), 1, "claimed at its deadline");
    // Reached again, the wait keeps the deadline it stored first.
    let state = s
        .signal_wait(
            again[0].fence(),
            &draft,
            Duration::hours(5),
            since(),
            at(61),
        )
        .await
        .unwrap();
    assert_eq!(ended(state), json!("timeout"));
    // An event after the timeout changes nothing recorded.
    s.signal_send(&draft, "1", since(), at(62)).await.unwrap();
    let state = s
        .signal_wait(
            again[0].fence(),
            &draft,
            Duration::hours(5),
            since(),
            at(63),
        )
        .await
        .unwrap();
    assert_eq!(ended(state), json!("timeout"));
}

async fn a_wait_of_a_claim_no_longer_held_stores_nothing<S: Storage>(s: &S) {
    let draft = approval("draft-4");
    s.signal_send(&draft, "1", since(), at(0)).await.unwrap();
    insert_and_claim(s, &[job(id(1), "w")], "a").await;
    let state = s
        .signal_wait(
            fence(id(1), 7),
            &draft,
            Duration::seconds(60),
            since(),
            at(1),
        )
        .await
        .unwrap();
    assert_eq!(state, WaitState::Pending { until: at(61) });
    assert_eq!(outcome(s, id(1), &draft).await, None);
    assert_eq!(
        s.step_get(id(1), &draft.deadline_step()).await.unwrap(),
        None
    );
}

async fn a_job_that_no_longer_waits_is_not_resumed<S: Storage>(s: &S) {
    let draft = approval("draft-5");
    insert_and_claim(s, &[job(id(1), "w"), job(id(2), "other")], "a").await;
    s.jobs_complete(&[waits(id(1), &draft, at(100)), waits(id(2), &draft, at(100))])
        .await
        .unwrap();
    // One is requeued by hand, the other claimed and finished another way.
    assert_eq!(
        s.job_requeue(id(1), at(11), off(at(11))).await.unwrap(),
        Requeue::Requeued
    );
    let names = ["other".to_owned()];
    let claimed = s
        .jobs_claim(ClaimRequest {
            names: Some(&names),
            ..claim("b", at(100), 10)
        })
        .await
        .unwrap();
    assert_eq!(ids(&claimed), [id(2)]);
    let mut finished = done(id(2), "b", 1, Outcome::Succeeded);
    finished.token = claimed[0].token;
    s.jobs_complete(&[finished]).await.unwrap();
    assert_eq!(get(s, id(2)).await.waiting_for_event, None);
    assert_eq!(
        s.signal_send(&draft, "1", since(), at(101)).await.unwrap(),
        0
    );
    assert_eq!(state(s, id(1)).await, JobState::Enqueued);
    assert_eq!(state(s, id(2)).await, JobState::Succeeded);
}

async fn signals_prune_removes_events_sent_before_the_cutoff<S: Storage>(s: &S) {
    for (n, seconds) in [(1, 0), (2, 10), (3, 20)] {
        s.signal_send(&approval(&format!("k{n}")), "1", since(), at(seconds))
            .await
            .unwrap();
    }
    assert_eq!(s.signals_prune(at(15), 1).await.unwrap(), 1);
    assert_eq!(s.signals_prune(at(15), 10).await.unwrap(), 1);
    assert_eq!(s.signals_prune(at(15), 10).await.unwrap(), 0);
    // The one sent at `at(20)` is still there for a wait that begins now.
    let claimed = insert_and_claim(s, &[job(id(1), "w")], "a").await;
    let state = s
        .signal_wait(
            claimed[0].fence(),
            &approval("k3"),
            Duration::seconds(5),
            since(),
            at(30),
        )
        .await
        .unwrap();
    assert_eq!(ended(state), json!({"event": 1}));
}
