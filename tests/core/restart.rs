//! Durability across processes: a job enqueued by one process that exits before it
//! runs is still there, and runs, when a new process opens the same database file.

use std::process::Command;

use crate::support::process::test_name;
use crate::support::{Backend, Probe, TestDb, test_server, wait_for_state};
use jobs::Jobs;
use jobs::prelude::*;

/// Set for the child process: the database it enqueues into.
const CHILD_DB: &str = "JOBS_TEST_CHILD_DB";

#[job(display = "Remind {user_id}: {text}")]
async fn send_reminder(State(probe): State<Probe>, ctx: JobContext, user_id: u64, text: String) {
    let _run = probe.start(ctx.id());
    probe.note(format!("{user_id}: {text}"));
}

/// The child's part, run by `survives_the_process_that_enqueued_it` in another process
/// of this test binary; on its own (no database given) it has nothing to do.
#[tokio::test]
async fn child_enqueues_and_exits() {
    let Ok(url) = std::env::var(CHILD_DB) else {
        return;
    };
    let jobs = Jobs::connect(&url).await.expect("child connects");
    let id = jobs
        .enqueue(SendReminder {
            user_id: 7,
            text: "Review the Q3 deck".into(),
        })
        .await
        .expect("child enqueues");
    println!("ENQUEUED {id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_the_process_that_enqueued_it() {
    let db = TestDb::new(Backend::Sqlite).await;
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &test_name(module_path!(), "child_enqueues_and_exits"),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB, &db.url)
        .output()
        .expect("child runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let id: JobId = stdout
        .lines()
        .find_map(|line| line.split_once("ENQUEUED ").map(|(_, id)| id.trim()))
        .unwrap_or_else(|| panic!("child printed no id: {stdout}"))
        .parse()
        .unwrap();

    // The child process is gone; a new client and server open the same file.
    let jobs = Jobs::connect(&db.url).await.unwrap();
    assert_eq!(jobs.get(id).await.unwrap().state, JobState::Enqueued);
    let probe = Probe::new();
    let server = test_server(&jobs, &probe).start().await.unwrap();
    wait_for_state(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(probe.runs(id), 1);
    assert_eq!(probe.notes(), ["7: Review the Q3 deck"]);
}
