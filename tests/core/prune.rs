//! Pruning finished jobs: a backlog of old rows larger than one maintenance round goes
//! at the database's pace, round after round, not one round per poll interval.

use std::time::Duration;

use crate::support::{Backend, LONG_LEASE, Probe, setup, test_server, wait_until};
use jobs::prelude::*;

/// More than one round prunes (ten batches of 1,000).
const OLD: u32 = 12_500;

#[job(name = "prune.tidy")]
async fn tidy(n: u32) {
    let _ = n;
}

backend_tests!(a_prune_backlog_bigger_than_a_round_goes_without_waiting_a_poll_interval);

async fn a_prune_backlog_bigger_than_a_round_goes_without_waiting_a_poll_interval(
    backend: Backend,
) {
    let (_db, clock, jobs, probe): (_, _, _, Probe) = setup(backend).await;
    jobs.enqueue_many((0..OLD).map(|n| Tidy { n }))
        .await
        .unwrap();
    // A poll interval far longer than the test: a second round that waited for it
    // would never come.
    let server = test_server(&jobs, &probe)
        .poll_interval(Duration::from_secs(600))
        .server_timeout(LONG_LEASE)
        .delete_succeeded_after(Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    wait_until("every job succeeded", || async {
        jobs.count_by_state().await.unwrap() == [(JobState::Succeeded, u64::from(OLD))]
    })
    .await;
    // Past their retention: the move wakes the maintenance round.
    clock.advance(Duration::from_secs(2 * 3600));
    wait_until("every old job is pruned", || async {
        jobs.count_by_state().await.unwrap().is_empty()
    })
    .await;
    server.shutdown().await;
}
