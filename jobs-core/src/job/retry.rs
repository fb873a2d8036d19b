//! When a failed job runs again: by default `3^n` seconds after its n-th failure (3 s,
//! 9 s, 27 s … 59,049 s after the tenth), JobRunr's policy, plus up to 10 % jitter so
//! jobs that failed together do not all retry in the same instant; or as the job's own
//! [`BackoffPolicy`] says.

use std::time::Duration;

use jobs_grammar::BackoffPolicy;

use crate::JobId;

/// Retries a job gets when neither the job nor the server says otherwise.
pub const DEFAULT_RETRIES: u32 = 10;

/// The delay before the retry that follows failure number `failures` (1-based).
///
/// The jitter is derived from the job id, the attempt and `seed`, not from a random
/// source, so a test (or a seeded deployment) sees the same delays every run.
pub fn backoff(failures: u32, id: JobId, seed: u64) -> Duration {
    let base_secs = 3u64.saturating_pow(failures.clamp(1, 20));
    let base = Duration::from_secs(base_secs);
    let spread_ms = base_secs * 100; // 10 % of the base, in milliseconds
    let jitter_ms =
        mix(id.as_uuid().as_u128() as u64 ^ seed ^ u64::from(failures)) % (spread_ms + 1);
    base + Duration::from_millis(jitter_ms)
}

/// The delay before the retry that follows failure number `failures` (1-based) under
/// `policy` (the default [`backoff`] without one). `Fixed` waits exactly its delay;
/// `Exponential` doubles from its base with up to 10 % jitter, never past its `max`.
pub(crate) fn delay(
    policy: Option<BackoffPolicy>,
    failures: u32,
    id: JobId,
    seed: u64,
) -> Duration {
    match policy {
        None => backoff(failures, id, seed),
        Some(BackoffPolicy::Fixed(delay)) => delay,
        Some(BackoffPolicy::Exponential { base, max }) => {
            let doubled = base.saturating_mul(2u32.saturating_pow(failures.clamp(1, 32) - 1));
            let spread = doubled.as_millis().min(u128::from(u64::MAX)) as u64 / 10;
            let jitter_ms = mix(id.as_uuid().as_u128() as u64 ^ seed ^ u64::from(failures))
                % spread.saturating_add(1);
            let delay = doubled.saturating_add(Duration::from_millis(jitter_ms));
            max.map_or(delay, |max| delay.min(max))
        }
    }
}

/// SplitMix64's finaliser: a fast, well-spread hash of one word.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_as_powers_of_three_with_at_most_ten_percent_jitter() {
        let id = JobId::new();
        for failures in 1..=10 {
            let base = Duration::from_secs(3u64.pow(failures));
            let delay = backoff(failures, id, 0);
            assert!(delay >= base, "{failures}: {delay:?} < {base:?}");
            assert!(delay <= base + base / 10, "{failures}: {delay:?} too long");
        }
    }

    #[test]
    fn jitter_is_deterministic_per_job_and_seed() {
        let id = JobId::new();
        assert_eq!(backoff(3, id, 7), backoff(3, id, 7));
        let spread: std::collections::HashSet<_> =
            (0..50).map(|seed| backoff(5, id, seed)).collect();
        assert!(spread.len() > 10, "jitter barely varies: {spread:?}");
    }

    #[test]
    fn a_fixed_policy_waits_the_same_and_an_exponential_one_doubles_to_its_cap() {
        let id = JobId::new();
        let fixed = Some(BackoffPolicy::Fixed(Duration::from_secs(30)));
        for failures in [1, 2, 10, u32::MAX] {
            assert_eq!(delay(fixed, failures, id, 0), Duration::from_secs(30));
        }
        let exponential = Some(BackoffPolicy::Exponential {
            base: Duration::from_secs(2),
            max: Some(Duration::from_secs(60)),
        });
        for (failures, base) in [(1, 2), (2, 4), (3, 8), (4, 16), (5, 32)] {
            let delay = delay(exponential, failures, id, 0);
            let base = Duration::from_secs(base);
            assert!(
                delay >= base && delay <= base + base / 10,
                "{failures}: {delay:?}"
            );
        }
        assert_eq!(delay(exponential, 6, id, 0), Duration::from_secs(60));
        assert_eq!(delay(exponential, u32::MAX, id, 0), Duration::from_secs(60));
        let unbounded = Some(BackoffPolicy::Exponential {
            base: Duration::from_secs(1),
            max: None,
        });
        assert!(delay(unbounded, u32::MAX, id, 0) >= Duration::from_secs(1 << 31));
        assert_eq!(delay(None, 3, id, 7), backoff(3, id, 7));
    }

    #[test]
    fn huge_failure_counts_do_not_overflow() {
        let delay = backoff(u32::MAX, JobId::new(), 0);
        assert!(delay >= Duration::from_secs(3u64.pow(20)));
    }
}
