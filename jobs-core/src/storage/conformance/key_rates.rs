//! Rates per concurrency key: a keyed claim takes of each key no more than the key's
//! rate leaves of its starts within the window, as well as no more than its concurrency
//! leaves; records the starts per key and forgets those that left the window; one key's
//! window never limits another's; racing claims never start more of a key than its rate.

use futures_util::future::join_all;

use super::concurrency::{among, keyed_claim};
use super::*;
use crate::Rate;
use crate::storage::ConcurrencyKey;
use crate::storage::rates::key_scope;

conformance!(
    a_keyed_claim_takes_no_more_of_a_key_than_its_rate_leaves,
    a_key_with_a_rate_and_a_concurrency_holds_to_both,
    racing_keyed_claims_never_start_more_of_a_key_than_its_rate,
    a_keyed_row_without_a_limit_or_a_rate_is_never_claimed,
);

/// Two starts per minute.
fn two_a_minute() -> Rate {
    Rate::per(2, std::time::Duration::from_secs(60))
}

/// Job `n` of `key`, limited by `limit` running at once and `rate`.
fn keyed(n: u128, key: &str, limit: Option<u32>, rate: Option<Rate>) -> NewJob {
    NewJob {
        concurrency: Some(ConcurrencyKey {
            key: key.to_owned(),
            limit,
            rate,
        }),
        ..job(id(n), "keyed")
    }
}

/// A keyed claim at `at(seconds)` of up to 100 jobs, all starting at once.
fn claim_at(seconds: i64) -> ClaimRequest<'static> {
    ClaimRequest {
        now: at(seconds),
        lease_until: at(seconds) + Duration::seconds(600),
        offset: off(at(seconds)),
        ..keyed_claim("s", 100, 100)
    }
}

/// How many of `claimed` are of each of the tenants `t0`..`t2` (ids `t * 10 + 1..=5`).
fn per_tenant(claimed: &[ClaimedJob]) -> [usize; 3] {
    [0u128, 1, 2].map(|t| among(claimed, t * 10 + 1..t * 10 + 6))
}

async fn a_keyed_claim_takes_no_more_of_a_key_than_its_rate_leaves<S: Storage>(s: &S) {
    // Three tenants of five jobs each at two a minute, with no limit on how many run.
    let jobs: Vec<NewJob> = (0..3u128)
        .flat_map(|t| (1..=5).map(move |n| keyed(t * 10 + n, &format!("t{t}"), None, None)))
        .map(|mut job| {
            if let Some(key) = &mut job.concurrency {
                key.rate = Some(two_a_minute());
            }
            job
        })
        .collect();
    s.jobs_insert(&jobs).await.unwrap();
    s.jobs_insert(&[job(id(100), "plain")]).await.unwrap();
    let first = s.jobs_claim(claim_at(1)).await.unwrap();
    assert_eq!(per_tenant(&first), [2, 2, 2], "two of each tenant");
    assert_eq!(among(&first, 100..101), 1, "the job without a key");
    for t in 0..3 {
        for n in 1..=5 {
            let job = id(t * 10 + n);
            let expected = if first.iter().any(|claimed| claimed.id == job) {
                JobState::Processing
            } else {
                JobState::Enqueued
            };
            assert_eq!(state(s, job).await, expected);
        }
    }
    let window = s.rate_window(&key_scope("t0"), at(0)).await.unwrap();
    assert_eq!(window.started, 2, "the two starts of the key");
    // Within the window, nothing more of them.
    assert!(s.jobs_claim(claim_at(30)).await.unwrap().is_empty());
    assert!(s.jobs_claim(claim_at(61)).await.unwrap().is_empty());
    // A tenant whose window is empty is not held back by the others'.
    s.jobs_insert(&[keyed(31, "t3", None, Some(two_a_minute()))])
        .await
        .unwrap();
    let other = s.jobs_claim(claim_at(61)).await.unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].id, id(31));
    // Past the window (a minute and its slack after the first claim): two more each.
    let second = s.jobs_claim(claim_at(62)).await.unwrap();
    assert_eq!(per_tenant(&second), [2, 2, 2]);
    assert_eq!(
        s.rate_window(&key_scope("t0"), at(-100))
            .await
            .unwrap()
            .started,
        2,
        "the claim deleted the key's starts that left the window"
    );
    assert!(s.jobs_claim(claim_at(100)).await.unwrap().is_empty());
    let last = s.jobs_claim(claim_at(123)).await.unwrap();
    assert_eq!(per_tenant(&last), [1, 1, 1]);
    for t in 0..3 {
        for n in 1..=5 {
            let info = s.job_get(id(t * 10 + n)).await.unwrap().unwrap();
            assert_eq!((info.state, info.attempt), (JobState::Processing, 1));
        }
    }
}

async fn a_key_with_a_rate_and_a_concurrency_holds_to_both<S: Storage>(s: &S) {
    // One at a time, two a minute.
    let jobs: Vec<NewJob> = (1..=4)
        .map(|n| keyed(n, "k", Some(1), Some(two_a_minute())))
        .collect();
    s.jobs_insert(&jobs).await.unwrap();
    let complete = async |claimed: &[ClaimedJob]| {
        for job in claimed {
            s.jobs_complete(&[done(job.id, "s", 1, Outcome::Succeeded)])
                .await
                .unwrap();
        }
    };
    let first = s.jobs_claim(claim_at(1)).await.unwrap();
    assert_eq!(first.len(), 1, "its concurrency");
    assert!(s.jobs_claim(claim_at(2)).await.unwrap().is_empty());
    complete(&first).await;
    let second = s.jobs_claim(claim_at(3)).await.unwrap();
    assert_eq!(second.len(), 1);
    complete(&second).await;
    assert!(
        s.jobs_claim(claim_at(4)).await.unwrap().is_empty(),
        "nothing runs, but the window holds two starts"
    );
    assert_eq!(s.jobs_claim(claim_at(62)).await.unwrap().len(), 1);
}

async fn racing_keyed_claims_never_start_more_of_a_key_than_its_rate<S: Storage>(s: &S) {
    // Three keys of ten jobs each, two a minute, any number at once.
    let jobs: Vec<NewJob> = (0..30)
        .map(|n| keyed(n + 1, &format!("k{}", n % 3), None, Some(two_a_minute())))
        .collect();
    s.jobs_insert(&jobs).await.unwrap();
    let owners: Vec<String> = (0..8).map(|n| format!("s{n}")).collect();
    let claims = join_all(owners.iter().map(|owner| {
        s.jobs_claim(ClaimRequest {
            owner,
            ..claim_at(1)
        })
    }))
    .await;
    let claimed: Vec<ClaimedJob> = claims
        .into_iter()
        .flat_map(|claim| claim.expect("claim"))
        .collect();
    for key in 0..3u128 {
        let of_key = claimed
            .iter()
            .filter(|job| (job.id.as_uuid().as_u128() - 1) % 3 == key)
            .count();
        assert_eq!(of_key, 2, "jobs of k{key} claimed by eight racing claims");
        let window = s
            .rate_window(&key_scope(&format!("k{key}")), at(0))
            .await
            .unwrap();
        assert_eq!(window.started, 2);
    }
}

async fn a_keyed_row_without_a_limit_or_a_rate_is_never_claimed<S: Storage>(s: &S) {
    // What no enqueue writes: a key with neither. Claims leave it, as before rates.
    s.jobs_insert(&[keyed(1, "k", None, None)]).await.unwrap();
    assert!(s.jobs_claim(claim_at(1)).await.unwrap().is_empty());
}
