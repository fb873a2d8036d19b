//! Retry policies: a job's own backoff, errors that say retrying is pointless, and the
//! retry-after an error carries (a 429's).

use std::fmt;
use std::time::Duration;

use crate::support::{Backend, long_lease_server, setup, wait_for_job, wait_for_state};
use jobs::prelude::*;
use jobs::{Failure, JobError, JobInfo, Jobs};

backend_tests!(
    fixed_backoff_retries_every_thirty_seconds,
    exponential_backoff_doubles_up_to_its_cap,
    a_permanent_failure_fails_at_once,
    a_typed_error_says_it_is_permanent_or_when_to_come_back,
    a_permanent_failure_inside_an_anyhow_chain_fails_at_once,
    a_retry_after_moves_the_next_attempt,
);

#[job(retries = 3, backoff = "fixed(30s)")]
async fn poll_feed(ctx: JobContext) -> Result<(), String> {
    Err(format!("feed not ready (attempt {})", ctx.attempt()))
}

#[job(retries = 4, backoff = "exponential(2s, max = 5s)")]
async fn warm_cache(ctx: JobContext) -> Result<(), String> {
    Err(format!("cache cold (attempt {})", ctx.attempt()))
}

#[job(retries = 5)]
async fn use_key() -> Result<(), Failure> {
    Err(Failure::permanent("the model refused the key (401)"))
}

#[job(retries = 5)]
async fn fetch_page() -> anyhow::Result<()> {
    Err(anyhow::Error::new(Failure::permanent("410 Gone")).context("fetching the page"))
}

#[job(retries = 5)]
async fn ask_model_politely() -> Result<(), Failure> {
    Err(Failure::new("429 Too Many Requests").with_retry_after(Duration::from_secs(90)))
}

/// What a model client returns: some errors are worth a retry, some are not.
#[derive(Debug)]
enum ModelError {
    Unauthorized,
    RateLimited { retry_after: Duration },
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unauthorized => f.write_str("the model refused the key"),
            Self::RateLimited { .. } => f.write_str("rate limited by the model"),
        }
    }
}

impl std::error::Error for ModelError {}

impl JobError for ModelError {
    fn is_permanent(&self) -> bool {
        matches!(self, Self::Unauthorized)
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } => Some(*retry_after),
            Self::Unauthorized => None,
        }
    }
}

#[job(retries = 5)]
async fn call_model(status: u16) -> Result<(), ModelError> {
    Err(match status {
        401 => ModelError::Unauthorized,
        _ => ModelError::RateLimited {
            retry_after: Duration::from_secs(90),
        },
    })
}

/// Waits until failure number `failure` made the job wait for a retry; → the job and
/// the delay from that failure to the retry.
async fn retry_after_failure(jobs: &Jobs, id: JobId, failure: u32) -> (JobInfo, Duration) {
    let info = wait_for_job(jobs, id, &format!("waits for retry {failure}"), |info| {
        info.state == JobState::Scheduled && info.attempt == failure
    })
    .await;
    let failed_at = info.history.last().unwrap().at;
    let delay = (info.run_at - failed_at).to_std().unwrap();
    (info, delay)
}

async fn fixed_backoff_retries_every_thirty_seconds(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let server = long_lease_server(&jobs, &probe).await;
    let id = jobs.enqueue(PollFeed {}).await.unwrap();
    for failure in 1..=3 {
        let (info, delay) = retry_after_failure(&jobs, id, failure).await;
        assert_eq!(delay, Duration::from_secs(30), "after failure {failure}");
        clock.set(info.run_at);
    }
    let failed = wait_for_state(&jobs, id, JobState::Failed).await;
    server.shutdown().await;
    assert_eq!(failed.attempt, 4, "three retries after the first attempt");
}

async fn exponential_backoff_doubles_up_to_its_cap(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let server = long_lease_server(&jobs, &probe).await;
    let id = jobs.enqueue(WarmCache {}).await.unwrap();
    let mut delays = Vec::new();
    for failure in 1..=4 {
        let (info, delay) = retry_after_failure(&jobs, id, failure).await;
        delays.push(delay);
        clock.set(info.run_at);
    }
    wait_for_state(&jobs, id, JobState::Failed).await;
    server.shutdown().await;
    // 2 s and 4 s with up to 10 % jitter, then the cap, which jitter never passes.
    assert!(delays[0] >= Duration::from_secs(2) && delays[0] <= Duration::from_millis(2200));
    assert!(delays[1] >= Duration::from_secs(4) && delays[1] <= Duration::from_millis(4400));
    assert_eq!(delays[2..], [Duration::from_secs(5); 2], "{delays:?}");
}

async fn a_permanent_failure_fails_at_once(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let server = long_lease_server(&jobs, &probe).await;
    let id = jobs.enqueue(UseKey {}).await.unwrap();
    let failed = wait_for_state(&jobs, id, JobState::Failed).await;
    server.shutdown().await;
    assert_eq!(failed.attempt, 1, "no retry, though five were allowed");
    let error = failed.errors().next().unwrap();
    assert_eq!(error.message, "the model refused the key (401)");
}

async fn a_typed_error_says_it_is_permanent_or_when_to_come_back(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let server = long_lease_server(&jobs, &probe).await;
    let refused = jobs.enqueue(CallModel { status: 401 }).await.unwrap();
    let limited = jobs.enqueue(CallModel { status: 429 }).await.unwrap();
    let failed = wait_for_state(&jobs, refused, JobState::Failed).await;
    let (_, delay) = retry_after_failure(&jobs, limited, 1).await;
    server.shutdown().await;
    assert_eq!(failed.attempt, 1);
    assert_eq!(
        failed.errors().next().unwrap().message,
        "the model refused the key"
    );
    assert_eq!(delay, Duration::from_secs(90), "as the error said");
}

async fn a_permanent_failure_inside_an_anyhow_chain_fails_at_once(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let server = long_lease_server(&jobs, &probe).await;
    let id = jobs.enqueue(FetchPage {}).await.unwrap();
    let failed = wait_for_state(&jobs, id, JobState::Failed).await;
    server.shutdown().await;
    assert_eq!(failed.attempt, 1);
    let error = failed.errors().next().unwrap();
    assert_eq!(error.message, "fetching the page");
    assert_eq!(error.sources, ["410 Gone"]);
}

async fn a_retry_after_moves_the_next_attempt(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let server = long_lease_server(&jobs, &probe).await;
    let id = jobs.enqueue(AskModelPolitely {}).await.unwrap();
    let (info, delay) = retry_after_failure(&jobs, id, 1).await;
    assert_eq!(delay, Duration::from_secs(90), "not the backoff's 3 s");
    clock.set(info.run_at);
    retry_after_failure(&jobs, id, 2).await;
    server.shutdown().await;
}
