//! Rate limits: `queue_rate(q, rate)` starts at most `rate.count` jobs of a queue in
//! any window of `rate.period`, across servers; the jobs over the rate stay `Enqueued`,
//! hold no worker and are charged no attempt, and start when the window frees.

use std::time::Duration;

use crate::support::{
    Backend, LONG_LEASE, Probe, TestDb, first_attempts, setup, test_server, until_succeeded,
    wait_for_state,
};
use jobs::prelude::*;
use jobs::{JobServer, Jobs, ManualClock, Rate};

backend_tests!(
    a_rate_starts_its_count_per_period_and_the_rest_wait_uncharged,
    a_rate_holds_across_two_servers_claiming_at_once,
    a_bad_rate_is_refused_at_start_naming_its_setting,
);

#[job(queue = "llm", display = "Ask {n}")]
async fn ask(State(probe): State<Probe>, n: u32) {
    probe.note(format!("ask {n}"));
}

#[job(display = "Mark {n}")]
async fn mark(State(probe): State<Probe>, n: u32) {
    probe.note(format!("mark {n}"));
}

const MINUTE: Duration = Duration::from_secs(60);

/// A server whose leases outlast the minutes the tests move the clock by, with `llm`
/// rated at 3 per minute.
async fn rated_server(jobs: &Jobs, probe: &Probe) -> JobServer {
    test_server(jobs, probe)
        .worker_count(8)
        .server_timeout(LONG_LEASE)
        .queue_rate("llm", Rate::per(3, MINUTE))
        .start()
        .await
        .expect("server starts")
}

/// Enqueues a job of another queue and waits for it to succeed: the server's claims ran
/// since (each claim tries the rated queue first), so what waits in `llm` was passed by.
async fn after_a_claim(jobs: &Jobs, n: u32) {
    let marker = jobs.enqueue(Mark { n }).await.unwrap();
    wait_for_state(jobs, marker, JobState::Succeeded).await;
}

async fn a_rate_starts_its_count_per_period_and_the_rest_wait_uncharged(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let ids = jobs.enqueue_many((0..7).map(|n| Ask { n })).await.unwrap();
    let server = rated_server(&jobs, &probe).await;
    until_succeeded(&jobs, &ids, 3).await;
    after_a_claim(&jobs, 0).await;
    assert_eq!(
        first_attempts(&jobs, &ids).await,
        (3, 4, 0),
        "three started, four wait"
    );
    let llm = jobs
        .queues()
        .await
        .unwrap()
        .into_iter()
        .find(|queue| queue.queue == "llm")
        .expect("the rated queue is listed");
    assert_eq!((llm.waiting, llm.rate_limited), (4, 4));
    assert_eq!(llm.limits[0].rate.as_deref(), Some("3/1m"));
    // Within the window nothing more starts.
    clock.advance(Duration::from_secs(59));
    after_a_claim(&jobs, 1).await;
    assert_eq!(first_attempts(&jobs, &ids).await, (3, 4, 0));
    // Past it, the next three.
    clock.advance(Duration::from_secs(2));
    until_succeeded(&jobs, &ids, 6).await;
    after_a_claim(&jobs, 2).await;
    assert_eq!(first_attempts(&jobs, &ids).await, (6, 1, 0));
    clock.advance(Duration::from_secs(61));
    until_succeeded(&jobs, &ids, 7).await;
    assert_eq!(first_attempts(&jobs, &ids).await, (7, 0, 0));
    let llm = jobs.queues().await.unwrap();
    assert!(
        llm.iter().all(|queue| queue.rate_limited == 0),
        "nothing waits: {llm:?}"
    );
    server.shutdown().await;
}

/// A server of its own pool on the test's database, as another replica has.
async fn replica(db: &TestDb, clock: &ManualClock, probe: &Probe) -> JobServer {
    rated_server(&db.jobs(clock).await, probe).await
}

async fn a_rate_holds_across_two_servers_claiming_at_once(backend: Backend) {
    let (db, clock, jobs, probe) = setup(backend).await;
    let ids = jobs.enqueue_many((0..8).map(|n| Ask { n })).await.unwrap();
    // Sixteen free workers between them and eight jobs: without the rate every job
    // would start at once.
    let (one, two) = tokio::join!(replica(&db, &clock, &probe), replica(&db, &clock, &probe));
    for (round, started) in [3, 6, 8].into_iter().enumerate() {
        until_succeeded(&jobs, &ids, started).await;
        after_a_claim(&jobs, u32::try_from(round).unwrap()).await;
        assert_eq!(
            first_attempts(&jobs, &ids).await,
            (started, 8 - started, 0),
            "round {round}"
        );
        clock.advance(MINUTE + Duration::from_secs(1));
    }
    one.shutdown().await;
    two.shutdown().await;
}

async fn a_bad_rate_is_refused_at_start_naming_its_setting(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    for (rate, says) in [
        (Rate::per(0, MINUTE), "at least 1 job per period"),
        (Rate::per(5, Duration::ZERO), "at least 1 job per period"),
        (Rate::per(5, 2 * 24 * 60 * MINUTE), "a period of at most"),
    ] {
        let refused = test_server(&jobs, &probe)
            .queue_rate("llm", rate)
            .start()
            .await
            .expect_err("a bad rate is refused")
            .to_string();
        assert!(
            refused.contains("queue_rates") && refused.contains(says),
            "{refused}"
        );
    }
    let parsed = "50 per minute".parse::<Rate>().unwrap_err();
    assert_eq!(
        parsed.message(),
        "invalid rate `50 per minute`: it has no `/` between the count and the period"
    );
}
