//! The little statistics the figures need: percentiles of a sample, and rates.

use std::time::Duration;

use anyhow::{Context, Result};
use tokio::time::Instant;

/// Percentiles of a sample of durations, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spread {
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

impl Spread {
    /// The spread of `samples` (milliseconds); `None` for an empty sample.
    pub(crate) fn of(samples: &[f64]) -> Option<Self> {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Self {
            p50: percentile(&sorted, 50.0)?,
            p99: percentile(&sorted, 99.0)?,
            max: *sorted.last()?,
        })
    }
}

/// The nearest-rank percentile `p` (0–100) of an ascending sample: the smallest value
/// that at least `p` % of the sample does not exceed.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Items per second.
pub(crate) fn rate(items: usize, elapsed: Duration) -> f64 {
    items as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// Milliseconds, with their fraction.
pub(crate) fn millis(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}

/// Runs `read` once to warm up, then `repeats` times → median ms.
pub(crate) async fn median_ms<F, Fut>(repeats: usize, mut read: F) -> Result<f64>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    read().await?;
    let mut samples = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let started = Instant::now();
        read().await?;
        samples.push(millis(started.elapsed()));
    }
    samples.sort_by(f64::total_cmp);
    percentile(&samples, 50.0).context("no samples")
}

#[cfg(test)]
mod tests {
    use super::{Spread, percentile};

    #[test]
    fn nearest_rank_percentiles() {
        let sample: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sample, 50.0), Some(50.0));
        assert_eq!(percentile(&sample, 99.0), Some(99.0));
        assert_eq!(percentile(&sample, 100.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn spread_sorts_its_sample() {
        let spread = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((spread.p50, spread.p99, spread.max), (2.0, 3.0, 3.0));
    }
}
