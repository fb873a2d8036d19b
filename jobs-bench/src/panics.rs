//! The cost of a backtrace: a server runs a backlog of jobs that panic, once capturing
//! each panic's backtrace and once not; the clock stops when the last failure is
//! recorded.

use std::sync::Once;

use anyhow::{Result, ensure};

use crate::db::{Client, Raw, Scratch};
use crate::enqueue;
use crate::stats::rate;
use crate::work::{self, Panicky};

/// The message of every panic of the figure, which the quiet hook does not print.
pub(crate) const MESSAGE: &str = "jobs-bench: a panic on purpose";

/// Keeps the figure's panics off stderr (10,000 messages, each with a backtrace when
/// `RUST_BACKTRACE` is set, would cost more than what is measured); any other panic
/// prints as usual. Installed by `main` before any figure starts a server, so that the
/// library's hook, which notes where a job panicked and captures its backtrace, runs
/// first and then calls this one (installed after a server, it would replace that hook,
/// and no failure would get its backtrace).
pub(crate) fn quiet() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&MESSAGE) {
                previous(info);
            }
        }));
    });
}

/// Runs `n` pre-enqueued jobs that panic (no retries) with `workers` workers, capturing
/// backtraces or not → jobs per second, from server start to the last recorded failure.
pub(crate) async fn run(scratch: &Scratch, n: usize, workers: usize, capture: bool) -> Result<f64> {
    quiet();
    let filler = Client::open(scratch, None).await?;
    enqueue::backlog(&filler.jobs, n, |n| Panicky { n }).await?;
    filler.close().await;

    let client = Client::open(scratch, None).await?;
    let mut probe = Raw::connect(scratch.url()).await?;
    let (server, elapsed) =
        work::serve_until_done_with(client.jobs.clone(), workers, n, &mut probe, |builder| {
            builder.capture_backtraces(capture)
        })
        .await?;
    server.shutdown().await;
    client.close().await;
    let failed = probe.count("Failed").await?;
    let with_backtrace = probe.count_backtraces().await?;
    probe.close().await?;
    ensure!(usize::try_from(failed)? == n, "{failed} of {n} jobs failed");
    let expected = if capture { failed } else { 0 };
    ensure!(
        with_backtrace == expected,
        "{with_backtrace} of {failed} failures have a backtrace (capture {capture})"
    );
    Ok(rate(n, elapsed))
}
