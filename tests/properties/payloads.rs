//! Stored payloads that no longer decode (a job's parameters changed, or someone wrote
//! the row by hand): any text written as a job's payload in a real SQLite file, then a
//! real server. A payload that decodes runs; one that does not fails that job for good
//! with the decode error in its message; the other jobs run, and the server keeps
//! running jobs after them. Few cases: each starts a server.

use jobs::prelude::*;
use jobs::{JobId, JobState, Jobs};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::{Backend, setup, test_server, wait_until};
use crate::{cases, json_value, runtime, text};

/// Adds up; what it needs from its payload is a count and a label.
#[job(retries = 0, display = "Tally {label}")]
async fn tally(count: u32, label: String) -> Result<u32, std::convert::Infallible> {
    let _ = label;
    Ok(count)
}

/// Payloads a row may hold: any text, any JSON, and objects with the job's fields
/// holding values of any type.
fn payload() -> impl Strategy<Value = String> {
    let fields = (
        prop_oneof![json_value(), any::<u32>().prop_map(Value::from)],
        prop_oneof![json_value(), text().prop_map(Value::from)],
        prop::option::of(json_value()),
    )
        .prop_map(|(count, label, extra)| {
            let mut object = json!({"count": count, "label": label});
            if let Some(extra) = extra {
                object["extra"] = extra;
            }
            object.to_string()
        });
    prop_oneof![
        1 => text(),
        1 => json_value().prop_map(|value| value.to_string()),
        2 => fields,
    ]
}

async fn write_payload(url: &str, id: JobId, payload: &str) {
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    sqlx::query("UPDATE jobs_job SET payload = ? WHERE id = ?")
        .bind(payload)
        .bind(id.to_string())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

async fn finished(jobs: &Jobs, ids: &[JobId]) -> bool {
    for id in ids {
        let state = jobs.get(*id).await.unwrap().state;
        if !matches!(state, JobState::Succeeded | JobState::Failed) {
            return false;
        }
    }
    true
}

proptest! {
    #![proptest_config(cases(6))]

    #[test]
    fn a_payload_that_does_not_decode_fails_its_job_alone(
        payloads in prop::collection::vec(payload(), 1..6),
    ) {
        let runtime = runtime();
        runtime.block_on(async {
            let (db, _clock, jobs, probe) = setup(Backend::Sqlite).await;
            let mut rewritten = Vec::new();
            let mut good = Vec::new();
            for (index, payload) in payloads.iter().enumerate() {
                let label = format!("good {index}");
                good.push(jobs.enqueue(Tally { count: 1, label }).await.unwrap());
                let id = jobs.enqueue(Tally { count: 2, label: "rewritten".into() }).await.unwrap();
                write_payload(&db.url, id, payload).await;
                rewritten.push(id);
            }
            let server = test_server(&jobs, &probe).worker_count(2).start().await.unwrap();
            let all: Vec<JobId> = good.iter().chain(&rewritten).copied().collect();
            wait_until("every job finished", || finished(&jobs, &all)).await;
            for id in &good {
                prop_assert_eq!(jobs.get(*id).await.unwrap().state, JobState::Succeeded);
            }
            for (id, payload) in rewritten.iter().zip(&payloads) {
                let job = jobs.get(*id).await.unwrap();
                match serde_json::from_str::<Tally>(payload) {
                    Ok(_) => prop_assert_eq!(job.state, JobState::Succeeded, "{}", payload),
                    Err(error) => {
                        prop_assert_eq!(job.state, JobState::Failed, "{}", payload);
                        let message = job.last_error.unwrap_or_default();
                        prop_assert!(message.contains("does not decode as"), "{}", message);
                        prop_assert!(message.contains(&error.to_string()), "{} / {}", message, error);
                    }
                }
            }
            // The server is still running jobs.
            let after = jobs.enqueue(Tally { count: 3, label: "after".into() }).await.unwrap();
            let after_ids = [after];
            wait_until("the job after them succeeded", || finished(&jobs, &after_ids)).await;
            prop_assert_eq!(jobs.get(after).await.unwrap().state, JobState::Succeeded);
            server.shutdown().await;
            Ok(())
        })?;
    }
}
