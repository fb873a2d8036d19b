//! When a failed job runs again: `3^n` seconds after its n-th failure (3 s, 9 s, 27 s …
//! 59,049 s after the tenth), JobRunr's policy, plus up to 10 % jitter so jobs that
//! failed together do not all retry in the same instant.

use std::time::Duration;

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
    fn huge_failure_counts_do_not_overflow() {
        let delay = backoff(u32::MAX, JobId::new(), 0);
        assert!(delay >= Duration::from_secs(3u64.pow(20)));
    }
}
