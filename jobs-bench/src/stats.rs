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

/// The CPU time (user and system, every thread) this process has used so far, from
/// `/proc/self/stat`, in clock ticks of 10 ms (`CLK_TCK` is 100 on Linux). Unlike wall
/// time it barely moves with what else runs on the machine: in-process SQLite spends
/// its time on this process's threads.
pub(crate) fn cpu_time() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .context("a short /proc/self/stat")?
            .parse::<u64>()
            .context("a tick count of /proc/self/stat")
    };
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// A rate by the wall clock and by this process's CPU time ([`cpu_time`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Throughput {
    /// Items per second of wall time.
    pub(crate) wall: f64,
    /// Items per second of CPU time.
    pub(crate) cpu: f64,
}

impl Throughput {
    /// `items` done in `wall` of wall time and `cpu` of CPU time.
    pub(crate) fn of(items: usize, wall: Duration, cpu: Duration) -> Self {
        Self {
            wall: rate(items, wall),
            cpu: rate(items, cpu),
        }
    }
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
