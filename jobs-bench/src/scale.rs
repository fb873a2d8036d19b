//! Speed on a big table: the drain on a table that already holds many finished jobs
//! (not yet pruned), analyzed before the backlog arrived, as autovacuum leaves it when
//! a sudden backlog is still under its analyze threshold.

use anyhow::Result;

use crate::db::{Raw, Scratch};
use crate::drain;
use crate::list;

/// Fills a table of `old` finished jobs (then analyzed), and drains `n` no-op jobs
/// enqueued after that with `workers` workers → jobs per second.
pub(crate) async fn drain_on_big_table(
    scratch: &Scratch,
    old: usize,
    n: usize,
    workers: usize,
) -> Result<f64> {
    scratch.migrate().await?;
    if old > 0 {
        let mut raw = Raw::connect(scratch.url()).await?;
        list::fill_finished(&mut raw, old).await?;
        raw.close().await?;
    }
    Ok(drain::run(scratch, n, workers).await?.rate)
}
