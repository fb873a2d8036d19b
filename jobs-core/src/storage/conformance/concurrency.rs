//! Concurrency keys: a claim that reads them takes no more jobs of a key than leaves
//! its limit `Processing`, and no more keyed jobs than start at once; claims racing
//! for one key never take more than its limit between them.

use futures_util::future::join_all;

use super::*;
use crate::storage::ConcurrencyKey;

conformance!(
    a_claim_takes_no_more_of_a_key_than_its_limit_leaves,
    keyed_jobs_are_claimed_only_to_start_at_once,
    racing_claims_never_take_more_of_a_key_than_its_limit,
);

/// Job `n` of `key`, at most `limit` of which run at once, due at `at(seconds)`.
fn keyed(n: u128, key: &str, limit: u32, seconds: i64) -> NewJob {
    NewJob {
        run_at: at(seconds),
        concurrency: Some(ConcurrencyKey {
            key: key.to_owned(),
            limit: Some(limit),
            rate: None,
        }),
        ..job(id(n), "keyed")
    }
}

/// A claim of up to `limit` jobs at `at(1)` that reads concurrency keys.
pub(super) fn keyed_claim(owner: &str, limit: u32, start_now: u32) -> ClaimRequest<'_> {
    ClaimRequest {
        keyed: true,
        start_now,
        ..claim(owner, at(1), limit)
    }
}

/// How many of `claimed` have an id in `range`.
pub(super) fn among(claimed: &[ClaimedJob], range: std::ops::Range<u128>) -> usize {
    claimed
        .iter()
        .filter(|job| range.contains(&job.id.as_uuid().as_u128()))
        .count()
}

async fn a_claim_takes_no_more_of_a_key_than_its_limit_leaves<S: Storage>(s: &S) {
    // Key `a` (two at once) has jobs 1-4, key `b` (one at once) 11-13, and 21-22 have
    // no key. The first of `a` in claim order is the latest due, so order counts.
    let mut jobs: Vec<NewJob> = (1..=4).map(|n| keyed(n, "a", 2, 0)).collect();
    jobs[0].run_at = at(1);
    jobs.extend((11..=13).map(|n| keyed(n, "b", 1, 0)));
    jobs.extend((21..=22).map(|n| job(id(n), "plain")));
    s.jobs_insert(&jobs).await.unwrap();
    let claimed = s.jobs_claim(keyed_claim("s", 10, 10)).await.unwrap();
    assert_eq!(
        (
            among(&claimed, 1..5),
            among(&claimed, 11..14),
            among(&claimed, 21..23)
        ),
        (2, 1, 2),
        "two of `a`, one of `b`, every job without a key"
    );
    assert!(
        !claimed.iter().any(|job| job.id == id(1)),
        "the first two of `a` in claim order"
    );
    assert!(
        s.jobs_claim(keyed_claim("s", 10, 10))
            .await
            .unwrap()
            .is_empty()
    );
    for n in 2..=4 {
        assert_eq!(
            state(s, id(n)).await == JobState::Processing,
            claimed.iter().any(|job| job.id == id(n))
        );
    }
    // One of `a` ends: one more of `a` is claimed, nothing of `b`.
    let ended = claimed
        .iter()
        .find(|job| (1..5).contains(&job.id.as_uuid().as_u128()))
        .expect("a job of `a`");
    s.jobs_complete(&[done(ended.id, "s", 1, Outcome::Succeeded)])
        .await
        .unwrap();
    let next = s.jobs_claim(keyed_claim("s", 10, 10)).await.unwrap();
    assert_eq!(
        (among(&next, 1..5), among(&next, 11..14), next.len()),
        (1, 0, 1)
    );
}

async fn keyed_jobs_are_claimed_only_to_start_at_once<S: Storage>(s: &S) {
    let jobs: Vec<NewJob> = (1..=6).map(|n| keyed(n, &format!("k{n}"), 1, 0)).collect();
    s.jobs_insert(&jobs).await.unwrap();
    // Two free workers and room to claim eight ahead: two keyed jobs, none ahead.
    let claimed = s.jobs_claim(keyed_claim("s", 10, 2)).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(claimed.iter().all(|job| !job.ahead));
    // A claim only ahead of free workers takes none.
    assert!(
        s.jobs_claim(keyed_claim("s", 10, 0))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn racing_claims_never_take_more_of_a_key_than_its_limit<S: Storage>(s: &S) {
    // Three keys of ten jobs each, one at a time per key.
    let jobs: Vec<NewJob> = (0..30)
        .map(|n| keyed(n + 1, &format!("k{}", n % 3), 1, 0))
        .collect();
    s.jobs_insert(&jobs).await.unwrap();
    let owners: Vec<String> = (0..8).map(|n| format!("s{n}")).collect();
    let claims = join_all(
        owners
            .iter()
            .map(|owner| s.jobs_claim(keyed_claim(owner, 4, 4))),
    )
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
        assert_eq!(of_key, 1, "jobs of k{key} claimed by eight racing claims");
    }
}
