//! Agent tool calls: quota-checked inserts that store the caller, and lists, reads and
//! deletes that see only the rows whose caller is equal to the one asking.

use super::*;
use crate::storage::Admission;

conformance!(
    a_job_is_stored_with_its_caller_below_the_limit_only,
    a_recurring_job_is_stored_with_its_caller_below_the_limit_only,
    callers_are_equal_or_not_never_prefixes_or_patterns,
    lists_page_in_sql_after_the_given_id,
    runs_of_a_callers_recurring_job_are_the_callers,
);

/// Callers that a prefix, a `LIKE` pattern or a case-blind match would confuse.
const LOOKALIKES: [&str; 7] = [
    "org:42",
    "org:42:user:7",
    "org%",
    "org_42",
    "ORG:42",
    "org:4",
    "org:42 ",
];

fn recurring(rid: &str) -> NewRecurring {
    NewRecurring {
        id: rid.to_owned(),
        schedule: Schedule::cron("0 8 * * *").unwrap(),
        template: JobTemplate {
            name: "digest".to_owned(),
            display_name: "Digest".to_owned(),
            payload: "{}".to_owned(),
            max_retries: None,
            labels: vec!["tool-call".to_owned()],
        },
        missed: MissedTicks::RunOnce,
        allow_overlap: false,
        source: RecurringSource::Api,
        application: None,
        next_run_at: at(3600),
    }
}

async fn listed_jobs<S: Storage>(s: &S, caller: &str) -> Vec<JobId> {
    let jobs = s.tool_jobs_list(caller, None, 1000).await.unwrap();
    jobs.into_iter().map(|job| job.id).collect()
}

async fn listed_recurring<S: Storage>(s: &S, caller: &str) -> Vec<String> {
    let recurring = s.tool_recurring_list(caller, None, 1000).await.unwrap();
    recurring
        .into_iter()
        .map(|recurring| recurring.id)
        .collect()
}

async fn a_job_is_stored_with_its_caller_below_the_limit_only<S: Storage>(s: &S) {
    // A job without a caller, and another caller's, count for no one.
    s.jobs_insert(&[job(id(1), "note")]).await.unwrap();
    let theirs = s.tool_job_insert(&job(id(2), "note"), "bob", 2).await;
    assert_eq!(theirs.unwrap(), Admission::Stored);
    for n in [3, 4] {
        let stored = s.tool_job_insert(&job(id(n), "note"), "alice", 2).await;
        assert_eq!(stored.unwrap(), Admission::Stored);
    }
    let refused = s.tool_job_insert(&job(id(5), "note"), "alice", 2).await;
    assert_eq!(refused.unwrap(), Admission::Refused { current: 2 });
    assert!(s.job_get(id(5)).await.unwrap().is_none(), "nothing stored");
    assert_eq!(listed_jobs(s, "alice").await, [id(4), id(3)]);
    assert_eq!(
        s.tool_job_state("alice", id(3)).await.unwrap(),
        Some(JobState::Enqueued)
    );

    // Only pending jobs count: one deleted makes room.
    s.job_delete(id(3), at(1)).await.unwrap();
    let stored = s.tool_job_insert(&job(id(6), "note"), "alice", 2).await;
    assert_eq!(stored.unwrap(), Admission::Stored);
    assert_eq!(listed_jobs(s, "alice").await, [id(6), id(4)]);
}

async fn a_recurring_job_is_stored_with_its_caller_below_the_limit_only<S: Storage>(s: &S) {
    s.recurring_upsert(&recurring("app-report"), at(0))
        .await
        .unwrap();
    let stored = s
        .tool_recurring_insert(&recurring("tool:digest:1"), "alice", 1, at(0))
        .await;
    assert_eq!(stored.unwrap(), Admission::Stored);
    let refused = s
        .tool_recurring_insert(&recurring("tool:digest:2"), "alice", 1, at(0))
        .await;
    assert_eq!(refused.unwrap(), Admission::Refused { current: 1 });
    assert!(s.recurring_get("tool:digest:2").await.unwrap().is_none());
    let stored = s
        .tool_recurring_insert(&recurring("tool:digest:3"), "bob", 1, at(0))
        .await;
    assert_eq!(stored.unwrap(), Admission::Stored);
    assert_eq!(listed_recurring(s, "alice").await, ["tool:digest:1"]);

    // A stored id is never handed to another caller.
    assert!(
        s.tool_recurring_insert(&recurring("tool:digest:1"), "bob", 5, at(0))
            .await
            .is_err()
    );
    assert!(
        s.tool_recurring_insert(&recurring("app-report"), "bob", 5, at(0))
            .await
            .is_err()
    );
    assert_eq!(listed_recurring(s, "bob").await, ["tool:digest:3"]);
    assert_eq!(
        s.recurring_get("tool:digest:1").await.unwrap().unwrap().id,
        "tool:digest:1"
    );
}

async fn callers_are_equal_or_not_never_prefixes_or_patterns<S: Storage>(s: &S) {
    for (n, caller) in (1..).zip(LOOKALIKES) {
        let stored = s.tool_job_insert(&job(id(n), "note"), caller, 10).await;
        assert_eq!(stored.unwrap(), Admission::Stored);
        let rid = format!("tool:digest:{caller}");
        let stored = s
            .tool_recurring_insert(&recurring(&rid), caller, 10, at(0))
            .await;
        assert_eq!(stored.unwrap(), Admission::Stored);
    }
    for (n, caller) in (1..).zip(LOOKALIKES) {
        assert_eq!(listed_jobs(s, caller).await, [id(n)], "{caller:?}");
        let rid = format!("tool:digest:{caller}");
        assert_eq!(
            listed_recurring(s, caller).await,
            std::slice::from_ref(&rid),
            "{caller:?}"
        );
        for (m, other) in (1..).zip(LOOKALIKES) {
            if m != n {
                assert_eq!(s.tool_job_state(other, id(n)).await.unwrap(), None);
                assert!(!s.tool_recurring_delete(other, &rid).await.unwrap());
            }
        }
        // A caller counts its own rows only.
        let refused = s
            .tool_job_insert(&job(id(100 + n), "note"), caller, 1)
            .await;
        assert_eq!(refused.unwrap(), Admission::Refused { current: 1 });
    }
    for caller in ["org", "%", "_", "", "org:42:user:7:x"] {
        assert!(listed_jobs(s, caller).await.is_empty(), "{caller:?}");
        assert!(listed_recurring(s, caller).await.is_empty(), "{caller:?}");
    }
    assert!(
        s.tool_recurring_delete("org:42", "tool:digest:org:42")
            .await
            .unwrap()
    );
    assert_eq!(listed_recurring(s, "org:42").await, Vec::<String>::new());
    assert_eq!(
        listed_recurring(s, "org:42:user:7").await,
        ["tool:digest:org:42:user:7"]
    );
}

async fn lists_page_in_sql_after_the_given_id<S: Storage>(s: &S) {
    for n in 1..=5 {
        s.tool_job_insert(&job(id(n), "note"), "alice", 10)
            .await
            .unwrap();
        let rid = format!("tool:digest:{n}");
        s.tool_recurring_insert(&recurring(&rid), "alice", 10, at(0))
            .await
            .unwrap();
    }
    let ids = |jobs: Vec<crate::JobSummary>| jobs.into_iter().map(|job| job.id).collect::<Vec<_>>();
    let first = s.tool_jobs_list("alice", None, 2).await.unwrap();
    assert_eq!(ids(first), [id(5), id(4)]);
    let next = s.tool_jobs_list("alice", Some(id(4)), 2).await.unwrap();
    assert_eq!(ids(next), [id(3), id(2)]);
    let last = s.tool_jobs_list("alice", Some(id(2)), 2).await.unwrap();
    assert_eq!(ids(last), [id(1)]);

    let names = |rows: Vec<RecurringInfo>| rows.into_iter().map(|row| row.id).collect::<Vec<_>>();
    let first = s.tool_recurring_list("alice", None, 3).await.unwrap();
    assert_eq!(
        names(first),
        ["tool:digest:1", "tool:digest:2", "tool:digest:3"]
    );
    let next = s
        .tool_recurring_list("alice", Some("tool:digest:3"), 3)
        .await
        .unwrap();
    assert_eq!(names(next), ["tool:digest:4", "tool:digest:5"]);
}

async fn runs_of_a_callers_recurring_job_are_the_callers<S: Storage>(s: &S) {
    s.tool_recurring_insert(&recurring("tool:digest:1"), "alice", 10, at(0))
        .await
        .unwrap();
    s.recurring_upsert(&recurring("app-report"), at(0))
        .await
        .unwrap();
    for (rid, n) in [("tool:digest:1", 1), ("app-report", 2)] {
        let runs = [NewJob {
            recurring_id: Some(rid.to_owned()),
            ..job(id(n), "digest")
        }];
        let fired = s
            .recurring_fire(FireRequest {
                id: rid,
                expected_next: at(3600),
                next: Some(at(7200)),
                runs: &runs,
                allow_overlap: false,
                wait_for_active: false,
                now: at(3601),
            })
            .await
            .unwrap();
        assert_eq!(fired, Fired::Created);
    }
    assert_eq!(listed_jobs(s, "alice").await, [id(1)]);
    assert_eq!(
        s.tool_job_state("alice", id(1)).await.unwrap(),
        Some(JobState::Enqueued)
    );
    assert_eq!(s.tool_job_state("alice", id(2)).await.unwrap(), None);

    // A run started by hand too.
    for (rid, n) in [("tool:digest:1", 3), ("app-report", 4)] {
        s.recurring_trigger(&NewJob {
            recurring_id: Some(rid.to_owned()),
            ..job(id(n), "digest")
        })
        .await
        .unwrap();
    }
    assert_eq!(listed_jobs(s, "alice").await, [id(3), id(1)]);
    assert!(s.job_get(id(4)).await.unwrap().is_some());
}
