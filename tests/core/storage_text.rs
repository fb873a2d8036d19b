//! Text that some databases refuse is still stored: a NUL in a job's arguments, display
//! name or error. PostgreSQL `text` cannot hold NUL; if a result could not be written,
//! the server would retry writing it forever.

use std::time::Duration;

use crate::support::{Backend, TestDb, start_time, wait_for_state};
use jobs::prelude::*;
use jobs::{JobServer, ManualClock};

backend_tests!(nul_in_arguments_name_and_error_is_stored);

#[job(retries = 0, display = "Echo {text}")]
async fn echo_failure(text: String) -> Result<(), String> {
    Err(text)
}

async fn nul_in_arguments_name_and_error_is_stored(backend: Backend) {
    let db = TestDb::new(backend).await;
    let jobs = db.jobs(&ManualClock::new(start_time())).await;
    let server = JobServer::builder(jobs.clone())
        .poll_interval(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let text = "before\0after";
    let id = jobs
        .enqueue(EchoFailure { text: text.into() })
        .await
        .unwrap();
    let info = wait_for_state(&jobs, id, JobState::Failed).await;
    server.shutdown().await;

    // Arguments are JSON, where NUL is escaped: they come back exactly.
    assert_eq!(info.payload, serde_json::json!({ "text": text }));
    // Plain text keeps everything but the NUL, which PostgreSQL stores as U+FFFD.
    let readable = |stored: &str| stored.replace('\u{FFFD}', "\0");
    assert_eq!(readable(&info.display_name), format!("Echo {text}"));
    let error = info.errors().next().expect("the failure is recorded");
    assert_eq!(readable(&error.message), text);
    assert_eq!(readable(info.last_error.as_deref().unwrap()), text);
}
