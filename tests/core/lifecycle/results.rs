//! What a job returns: stored with its success, shown with the job, read back typed.

use crate::support::{Backend, Probe, long_lease_server, setup, wait_for_state};
use jobs::Error;
use jobs::prelude::*;
use serde::{Deserialize, Serialize};

backend_tests!(
    a_result_is_stored_and_read_back_typed,
    a_job_that_returns_nothing_has_no_result,
    a_result_past_the_cap_fails_the_job_with_a_clear_message,
    reading_a_result_as_another_job_is_an_error,
    a_chain_passes_each_step_its_parents_result,
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

async fn a_result_is_stored_and_read_back_typed(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let id = jobs.enqueue(Summarize { document: 7 }).await.unwrap();
    assert_eq!(
        jobs.result::<Summarize>(id).await.unwrap(),
        None,
        "not run yet"
    );
    let server = long_lease_server(&jobs, &probe).await;
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
    let server = long_lease_server(&jobs, &probe).await;
    let id = jobs.enqueue(Archive { document: 7 }).await.unwrap();
    let info = wait_for_state(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(info.result, None);
    assert_eq!(jobs.result::<Archive>(id).await.unwrap(), Some(()));
}

async fn a_result_past_the_cap_fails_the_job_with_a_clear_message(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let server = long_lease_server(&jobs, &probe).await;
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
    let server = long_lease_server(&jobs, &probe).await;
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

/// The next step of a chain: takes what the step before it returned.
#[job(retries = 3)]
async fn embed(
    State(probe): State<Probe>,
    ctx: JobContext,
    Parent(summary): Parent<Summary>,
) -> Result<usize, String> {
    let _run = probe.start(ctx.id());
    probe.note(format!("attempt {} got {}", ctx.attempt(), summary.title));
    if ctx.attempt() == 1 {
        return Err("the embedding service is warming up".into());
    }
    Ok(summary.words as usize * 2)
}

#[job(retries = 0)]
async fn orphan_embed(Parent(summary): Parent<Summary>) {
    let _ = summary;
}

async fn a_chain_passes_each_step_its_parents_result(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let server = long_lease_server(&jobs, &probe).await;
    let ids = jobs
        .enqueue(Summarize { document: 3 })
        .then(Embed {})
        .await
        .unwrap();
    let retry = crate::support::wait_for_job(&jobs, ids[1], "waits for a retry", |info| {
        info.state == JobState::Scheduled && info.attempt == 1
    })
    .await;
    clock.set(retry.run_at);
    wait_for_state(&jobs, ids[1], JobState::Succeeded).await;
    let lonely = jobs.enqueue(OrphanEmbed {}).await.unwrap();
    let failed = wait_for_state(&jobs, lonely, JobState::Failed).await;
    server.shutdown().await;
    // The retry got the same summary, and summarize did not run again for it.
    assert_eq!(
        probe.notes(),
        ["attempt 1 got Document 3", "attempt 2 got Document 3"]
    );
    assert_eq!(jobs.get(ids[0]).await.unwrap().attempt, 1);
    assert_eq!(jobs.result::<Embed>(ids[1]).await.unwrap(), Some(240));
    let message = &failed.errors().next().unwrap().message;
    assert!(
        message.contains("takes Parent<") && message.contains("has no parent"),
        "{message}"
    );
}

/// The testing helper runs a step with the result of the step before it, and answers
/// the step's own result typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inline_run_takes_a_parent_result_and_returns_its_own() {
    let (_db, _clock, jobs, probe) = setup(Backend::Sqlite).await;
    let summary = Summary {
        title: "Q3".into(),
        words: 50,
    };
    let inline = jobs::testing::Inline::new(&jobs)
        .state(probe)
        .attempt(2)
        .parent(&summary);
    let done = inline.perform(&Embed {}).await;
    assert_eq!(done.result.unwrap(), 100);
    let orphan = jobs::testing::Inline::new(&jobs)
        .perform(&OrphanEmbed {})
        .await;
    assert!(
        orphan
            .result
            .unwrap_err()
            .message()
            .contains("has no parent")
    );
}
