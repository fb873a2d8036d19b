//! Rate limits: a claim with a rate takes no more than leaves the scope's starts within
//! the window at its count, records its own, and forgets those that left the window;
//! claims racing for one scope never start more than the count between them, whether
//! the queue is capped or the server runs keyed jobs.

use futures_util::future::join_all;

use super::*;
use crate::storage::{RateCap, RateWindow};

conformance!(
    a_rated_claim_takes_what_the_window_leaves_and_records_it,
    racing_rated_claims_never_start_more_than_the_count,
    a_rate_holds_beside_a_global_limit_and_keys,
);

/// `n` jobs of `queue`, ids from `first`.
fn queued(first: u128, n: u128, queue: &str) -> Vec<NewJob> {
    (first..first + n)
        .map(|n| NewJob {
            queue: queue.to_owned(),
            ..job(id(n), "rated")
        })
        .collect()
}

/// At most 3 starts of `queue:llm` in any 60 s.
fn cap() -> RateCap<'static> {
    RateCap {
        scope: "queue:llm",
        count: 3,
        window: Duration::seconds(60),
    }
}

/// A claim by `owner` at `at(seconds)` of up to `limit` jobs of `llm` under [`cap`].
fn rated(owner: &str, seconds: i64, limit: u32) -> ClaimRequest<'_> {
    ClaimRequest {
        queues: QueueSelector::Only("llm"),
        rate: Some(cap()),
        ..claim(owner, at(seconds), limit)
    }
}

/// `oldest` is `at`: exactly on SQLite, which records the claim's `now`; within a
/// second on PostgreSQL, which records its own clock plus the claim's offset.
fn near(oldest: Option<DateTime<Utc>>, at: DateTime<Utc>) {
    let oldest = oldest.expect("a start in the window");
    assert!(
        (oldest - at).num_milliseconds().abs() < 1000,
        "{oldest} is not {at}"
    );
}

async fn a_rated_claim_takes_what_the_window_leaves_and_records_it<S: Storage>(s: &S) {
    s.jobs_insert(&queued(1, 10, "llm")).await.unwrap();
    s.jobs_insert(&queued(100, 1, "other")).await.unwrap();
    let taken = |claimed: Vec<ClaimedJob>| claimed.len();
    assert_eq!(taken(s.jobs_claim(rated("a", 1, 2)).await.unwrap()), 2);
    let window = s.rate_window("queue:llm", at(0)).await.unwrap();
    assert_eq!(window.started, 2);
    near(window.oldest, at(1));
    assert_eq!(
        taken(s.jobs_claim(rated("b", 30, 5)).await.unwrap()),
        1,
        "the room the window leaves"
    );
    assert_eq!(taken(s.jobs_claim(rated("b", 60, 5)).await.unwrap()), 0);
    // At 62 s the two starts at 1 s have left the window (it is `(now - 60 s, now]`),
    // and the one at 30 s has not.
    assert_eq!(taken(s.jobs_claim(rated("a", 62, 5)).await.unwrap()), 2);
    let window = s.rate_window("queue:llm", at(1)).await.unwrap();
    assert_eq!(window.started, 3);
    near(window.oldest, at(30));
    assert_eq!(
        s.rate_window("queue:llm", at(-10)).await.unwrap().started,
        3,
        "the claim at 62 s deleted the starts that left its window"
    );
    // Other scopes and queues are not counted, nor limited.
    assert_eq!(
        s.rate_window("queue:other", at(0)).await.unwrap(),
        RateWindow::default()
    );
    let rest = s.jobs_claim(claim("c", at(62), 100)).await.unwrap();
    assert_eq!(rest.len(), 6, "five of `llm` and the one of `other`");
}

async fn racing_rated_claims_never_start_more_than_the_count<S: Storage>(s: &S) {
    s.jobs_insert(&queued(1, 40, "llm")).await.unwrap();
    let owners = ["a", "b", "c", "d", "e", "f"];
    let claims = owners.map(|owner| s.jobs_claim(rated(owner, 1, 4)));
    let claimed: usize = join_all(claims)
        .await
        .into_iter()
        .map(|claimed| claimed.unwrap().len())
        .sum();
    assert_eq!(claimed, 3, "twenty-four asked for, three allowed");
    assert_eq!(s.rate_window("queue:llm", at(0)).await.unwrap().started, 3);
}

async fn a_rate_holds_beside_a_global_limit_and_keys<S: Storage>(s: &S) {
    s.jobs_insert(&queued(1, 10, "llm")).await.unwrap();
    // A global limit of 2 is the tighter one first.
    let capped = |owner, seconds, keyed| ClaimRequest {
        queues: QueueSelector::Capped {
            queue: "llm",
            global: 2,
        },
        keyed,
        ..rated(owner, seconds, 5)
    };
    let first = s.jobs_claim(capped("a", 1, false)).await.unwrap();
    assert_eq!(first.len(), 2);
    s.jobs_complete(
        &first
            .iter()
            .map(|job| done(job.id, "a", 1, Outcome::Succeeded))
            .collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    // Then the rate: one start left in the window, whichever claim asks.
    assert_eq!(s.jobs_claim(capped("b", 2, true)).await.unwrap().len(), 1);
    assert_eq!(s.jobs_claim(capped("b", 3, true)).await.unwrap().len(), 0);
    assert_eq!(s.jobs_claim(capped("b", 3, false)).await.unwrap().len(), 0);
    assert_eq!(s.rate_window("queue:llm", at(0)).await.unwrap().started, 3);
}
