//! What a running job writes beside its result: log lines, progress and step results.

use super::*;

conformance!(
    logs_are_kept_in_order_per_job,
    progress_keeps_the_latest_update,
    step_put_keeps_the_first_value,
);

fn line(job: u128, seconds: i64, attempt: u32, level: LogLevel, message: &str) -> LogLine {
    LogLine {
        token: 0, // TEMP(fence)
        job_id: id(job),
        at: at(seconds),
        attempt,
        level,
        message: message.to_owned(),
    }
}

async fn logs_are_kept_in_order_per_job<S: Storage>(s: &S) {
    s.jobs_insert(&[job(id(1), "talks"), job(id(2), "talks")])
        .await
        .unwrap();
    s.logs_insert(&[
        line(1, 5, 1, LogLevel::Info, "first"),
        line(2, 5, 1, LogLevel::Debug, "other job"),
        line(1, 3, 1, LogLevel::Warn, "second, earlier clock"),
    ])
    .await
    .unwrap();
    let long = "x".repeat(MAX_LOG_LINE_BYTES * 2);
    s.logs_insert(&[line(1, 9, 2, LogLevel::Error, &long)])
        .await
        .unwrap();
    s.logs_insert(&[]).await.unwrap();
    let logs = get(s, id(1)).await.logs;
    let seen: Vec<_> = logs
        .iter()
        .map(|entry| (entry.at, entry.attempt, entry.level, entry.message.len()))
        .collect();
    assert_eq!(seen.len(), 3, "only this job's lines: {seen:?}");
    assert_eq!(logs[0].message, "first");
    assert_eq!((logs[1].level, logs[1].at), (LogLevel::Warn, at(3)));
    assert_eq!(logs[1].message, "second, earlier clock");
    assert_eq!((logs[2].attempt, logs[2].level), (2, LogLevel::Error));
    assert!(logs[2].message.starts_with(&"x".repeat(100)));
    assert!(
        logs[2].message.len() < MAX_LOG_LINE_BYTES + 100,
        "a long line is cut"
    );
    assert_eq!(get(s, id(2)).await.logs.len(), 1);
}

async fn progress_keeps_the_latest_update<S: Storage>(s: &S) {
    insert_and_claim(s, &[job(id(1), "slow"), job(id(2), "slow")], "a").await;
    assert_eq!(get(s, id(1)).await.progress, None);
    let update = |job, done, total| ProgressUpdate {
        token: 0, // TEMP(fence)
        job_id: id(job),
        done,
        total,
    };
    s.progress_update(&[update(1, 1, 10), update(2, 5, 5)])
        .await
        .unwrap();
    s.progress_update(&[update(1, 4, 10)]).await.unwrap();
    let progress = get(s, id(1)).await.progress.unwrap();
    assert_eq!((progress.done, progress.total), (4, 10));
    let progress = get(s, id(2)).await.progress.unwrap();
    assert_eq!((progress.done, progress.total), (5, 5));
}

async fn step_put_keeps_the_first_value<S: Storage>(s: &S) {
    s.jobs_insert(&[job(id(1), "steps"), job(id(2), "steps")])
        .await
        .unwrap();
    assert_eq!(s.step_get(id(1), "fetch").await.unwrap(), None);
    s.step_put(id(1), "fetch", r#"{"rows":3}"#, at(1))
        .await
        .unwrap();
    s.step_put(id(1), "fetch", r#"{"rows":4}"#, at(2))
        .await
        .unwrap();
    s.step_put(id(1), "send", "true", at(3)).await.unwrap();
    let fetch = s.step_get(id(1), "fetch").await.unwrap().unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&fetch).unwrap(),
        serde_json::json!({"rows": 3})
    );
    assert_eq!(
        s.step_get(id(1), "send").await.unwrap().as_deref(),
        Some("true")
    );
    assert_eq!(s.step_get(id(2), "fetch").await.unwrap(), None);
}
