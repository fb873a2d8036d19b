//! What a job returns: stored with its success, shown with the job, read back typed.

use std::time::Duration;

use crate::support::{Backend, Probe, setup, test_server, wait_for_state};
use jobs::prelude::*;
use jobs::{Error, JobServer, Jobs};
use serde::{Deserialize, Serialize};

backend_tests!(
    a_result_is_stored_and_read_back_typed,
    a_job_that_returns_nothing_has_no_result,
    a_result_past_the_cap_fails_the_job_with_a_clear_message,
    reading_a_result_as_another_job_is_an_error,
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Summary {
    title: String,
    words: u32,
}

#[job(retries = 0)]
async fn summarize(document: u32) -> Result<Summary, String> {
    Ok(Summary {
        title: format!("Document {document}"),
        words: 120,
    })
}

#[job(retries = 0)]
async fn archive(document: u32) -> anyhow::Result<()> {
    let _ = document;
    Ok(())
}

#[job(retries = 3)]
async fn dump_everything() -> Result<String, String> {
    Ok("x".repeat(100 * 1024))
}

async fn server(jobs: &Jobs, probe: &Probe) -> JobServer {
    test_server(jobs, probe)
        .server_timeout(Duration::from_secs(30 * 24 * 3600))
        .start()
        .await
        .unwrap()
}

async fn a_result_is_stored_and_read_back_typed(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let id = jobs.enqueue(Summarize { document: 7 }).await.unwrap();
    assert_eq!(
        jobs.result::<Summarize>(id).await.unwrap(),
        None,
        "not run yet"
    );
    let server = server(&jobs, &probe).await;
    let info = wait_for_state(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(
        info.result,
        Some(serde_json::json!({ "title": "Document 7", "words": 120 }))
    );
    assert_eq!(
        jobs.result::<Summarize>(id).await.unwrap(),
        Some(Summary {
            title: "Document 7".into(),
            words: 120
        })
    );
}

async fn a_job_that_returns_nothing_has_no_result(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let server = server(&jobs, &probe).await;
    let id = jobs.enqueue(Archive { document: 7 }).await.unwrap();
    let info = wait_for_state(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(info.result, None);
    assert_eq!(jobs.result::<Archive>(id).await.unwrap(), Some(()));
}

async fn a_result_past_the_cap_fails_the_job_with_a_clear_message(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let server = server(&jobs, &probe).await;
    let id = jobs.enqueue(DumpEverything {}).await.unwrap();
    let info = wait_for_state(&jobs, id, JobState::Failed).await;
    server.shutdown().await;
    assert_eq!(info.attempt, 1, "the same result would be too big again");
    let message = &info.errors().next().unwrap().message;
    assert!(
        message.starts_with("the job's result is 102402 bytes of JSON, over the cap of 65536"),
        "{message}"
    );
    assert_eq!(info.result, None);
}

async fn reading_a_result_as_another_job_is_an_error(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let server = server(&jobs, &probe).await;
    let id = jobs.enqueue(Summarize { document: 1 }).await.unwrap();
    wait_for_state(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;
    let error = jobs.result::<Archive>(id).await.unwrap_err();
    assert!(matches!(error, Error::WrongJob { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("is a `core::lifecycle::results::summarize`"),
        "{error}"
    );
    assert!(matches!(
        jobs.result::<Summarize>(JobId::new()).await.unwrap_err(),
        Error::JobNotFound(_)
    ));
}
