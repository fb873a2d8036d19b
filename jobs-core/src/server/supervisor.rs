//! Keeps each loop of the server running: a loop that panics, or ends before it was
//! told to stop, is logged and started again after a back-off (100 ms, doubling up to
//! the poll interval), and counted in [`ServerMetrics`]; the server reports itself
//! unhealthy while a loop waits to restart.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{ServerMetrics, Shared};

/// First wait before a restart.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Runs one of the server's loops under [`supervise`] on a task of this runtime.
pub(super) fn spawn<F, Fut>(
    shared: &Arc<Shared>,
    name: &'static str,
    stop: &CancellationToken,
    start: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(supervise(
        name,
        shared.metrics.clone(),
        stop.clone(),
        shared.config.poll_interval,
        start,
    ))
}

/// Runs `start()` on a task of the current runtime until it ends after `stop` fired.
/// A run that panics, or ends while `stop` has not fired, is started again after the
/// back-off; the back-off starts over once a run lasted longer than its longest wait.
pub(super) async fn supervise<F, Fut>(
    name: &'static str,
    metrics: ServerMetrics,
    stop: CancellationToken,
    poll: Duration,
    mut start: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let longest = poll.max(FIRST_BACKOFF);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        match tokio::spawn(start()).await {
            Ok(()) if stop.is_cancelled() => return,
            Ok(()) => {
                tracing::error!(task = name, "a job server loop ended early; restarting it");
            }
            Err(error) if error.is_panic() => {
                let panic = error.into_panic();
                tracing::error!(
                    task = name,
                    panic = panic_message(&*panic),
                    "a job server loop panicked; restarting it"
                );
            }
            // The runtime is shutting down.
            Err(_) => return,
        }
        if started.elapsed() > longest {
            backoff = FIRST_BACKOFF;
        }
        metrics.backing_off();
        tracing::info!(task = name, retry_in = ?backoff, "restarting a job server loop");
        // A loop that must drain (the completer) restarts even when stopping: the
        // restarted run sees `stop` and ends as it should.
        tokio::time::sleep(backoff).await;
        metrics.restarting();
        backoff = (backoff * 2).min(longest);
    }
}

pub(super) fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a panic payload that is not a string)")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_loop_that_panics_or_ends_early_restarts_with_backoff_and_is_counted() {
        let metrics = ServerMetrics::default();
        let stop = CancellationToken::new();
        let runs = Arc::new(AtomicU32::new(0));
        let starts = Arc::new(std::sync::Mutex::new(Vec::new()));
        let supervisor = tokio::spawn(supervise(
            "test",
            metrics.clone(),
            stop.clone(),
            Duration::from_secs(1),
            {
                let runs = runs.clone();
                let starts = starts.clone();
                let stop = stop.clone();
                move || {
                    let run = runs.fetch_add(1, Ordering::SeqCst);
                    starts.lock().unwrap().push(Instant::now());
                    let stop = stop.clone();
                    async move {
                        match run {
                            0 | 2 | 3 | 4 | 5 => panic!("run {run} fails"),
                            1 => {} // ends early
                            _ => stop.cancelled().await,
                        }
                    }
                }
            },
        ));
        let began = Instant::now();
        while runs.load(Ordering::SeqCst) < 7 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(metrics.healthy(), "running again after the last back-off");
        assert_eq!(metrics.restarts(), 6);
        let waits: Vec<u128> = starts
            .lock()
            .unwrap()
            .windows(2)
            .map(|pair| (pair[1] - pair[0]).as_millis())
            .collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert!(began.elapsed() >= Duration::from_millis(3500));
        stop.cancel();
        supervisor.await.unwrap();
        assert_eq!(
            runs.load(Ordering::SeqCst),
            7,
            "a stopped loop is not restarted"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_server_is_unhealthy_while_a_loop_waits_to_restart() {
        let metrics = ServerMetrics::default();
        let stop = CancellationToken::new();
        let runs = Arc::new(AtomicU32::new(0));
        let supervisor = tokio::spawn(supervise(
            "test",
            metrics.clone(),
            stop.clone(),
            Duration::from_secs(1),
            {
                let runs = runs.clone();
                let stop = stop.clone();
                move || {
                    let run = runs.fetch_add(1, Ordering::SeqCst);
                    let stop = stop.clone();
                    async move {
                        if run == 0 {
                            panic!("first run fails");
                        }
                        stop.cancelled().await;
                    }
                }
            },
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!metrics.healthy());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(metrics.healthy());
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        stop.cancel();
        supervisor.await.unwrap();
    }
}
