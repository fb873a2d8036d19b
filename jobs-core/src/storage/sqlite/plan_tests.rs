//! The plans of what SQLite reads for the dashboard (a page of one name or label, the
//! counts per queue and by state), for the prune, and for an idle server (the next due
//! job, the jobs no server registers).

use super::admin::{PRUNE_PICK, QUEUE_COUNTS, STATE_COUNTS, THROUGHPUT, list_statement};
use super::lifecycle::{NEXT_RUN_AT, unserved_update};
use crate::JobQuery;
use crate::storage::conformance::TestDb;

/// The steps of SQLite's plan for `sql` with its parameters `binds`, on a fresh
/// database.
async fn plan_of(sql: &str, binds: &[i64]) -> Vec<String> {
    let db = TestDb::sqlite().await;
    let storage = db.sqlite_storage();
    let explained = format!("EXPLAIN QUERY PLAN {sql}");
    let mut query = sqlx::query(&explained);
    for value in binds {
        query = query.bind(*value);
    }
    super::query_plan(storage, query).await
}

/// The steps of the plan of the page of jobs `query` asks for.
async fn list_plan(query: &JobQuery) -> Vec<String> {
    let db = TestDb::sqlite().await;
    let storage = db.sqlite_storage();
    let mut explained = list_statement("EXPLAIN QUERY PLAN ", query);
    super::query_plan(storage, explained.build()).await
}

/// A page of one name reads the name's index newest job first: it neither walks
/// the newer jobs of other names nor sorts.
#[tokio::test]
async fn a_page_of_one_name_reads_the_names_jobs_in_order() {
    let first = JobQuery::default().name("app::send").limit(50);
    for query in [first.clone(), first.after(crate::JobId::new())] {
        let plan = list_plan(&query).await;
        assert!(
            plan.iter()
                .any(|step| step.contains("USING INDEX jobs_job_name (name=?")),
            "not through the name's index: {plan:?}"
        );
        assert!(
            !plan.iter().any(|step| step.contains("TEMP B-TREE")),
            "sorts: {plan:?}"
        );
    }
}

/// A page of one label reads the label's rows newest job first and each job by its
/// id: it neither gathers every job of the label first nor sorts.
#[tokio::test]
async fn a_page_of_one_label_reads_the_labels_rows_in_order() {
    let first = JobQuery::state(crate::JobState::Failed)
        .label("vip")
        .limit(50);
    for query in [first.clone(), first.after(crate::JobId::new())] {
        let plan = list_plan(&query).await;
        assert!(
            plan.first()
                .is_some_and(|step| step.starts_with("SEARCH l USING PRIMARY KEY (label=?")),
            "not the label's rows first: {plan:?}"
        );
        assert!(
            plan.iter()
                .any(|step| step.contains("jobs_job") && step.contains("id=?)")),
            "a job not read by its id: {plan:?}"
        );
        assert!(
            !plan
                .iter()
                .any(|step| step.contains("TEMP B-TREE") || step.contains("SUBQUERY")),
            "gathers or sorts: {plan:?}"
        );
    }
}

/// The counts per queue look the unfinished states up in the index on the state:
/// the succeeded rows, most of a big table, are never read.
#[tokio::test]
async fn the_counts_per_queue_read_through_the_state_index() {
    let plan = plan_of(QUEUE_COUNTS, &[0]).await;
    let reads: Vec<&String> = plan
        .iter()
        .filter(|step| step.contains("jobs_job"))
        .collect();
    assert!(!reads.is_empty(), "{plan:?}");
    for step in reads {
        assert!(
            step.contains("USING INDEX jobs_job_state (state=?)"),
            "a read of jobs_job not by state: {plan:?}"
        );
    }
}

/// A prune batch reads each state's old rows oldest first by a range of the
/// `(state, updated_at, id)` index, in its order: the rows it takes, whatever the
/// backlog and whichever younger rows have lower ids.
#[tokio::test]
async fn a_prune_batch_reads_old_rows_by_a_range_of_the_state_and_time_index() {
    let plan = plan_of(PRUNE_PICK, &[0, 0, 1_000]).await;
    let reads: Vec<&String> = plan
        .iter()
        .filter(|step| step.contains("jobs_job"))
        .collect();
    assert_eq!(reads.len(), 2, "{plan:?}");
    for step in reads {
        assert_eq!(
            step,
            "SEARCH jobs_job USING COVERING INDEX jobs_job_state_updated_id \
             (state=? AND updated_at<?)",
            "a read of old rows not by a range of the state and time: {plan:?}"
        );
    }
    // Sorted: only the two batches' rows, at the end.
    let sorts: Vec<&String> = plan
        .iter()
        .filter(|step| step.contains("TEMP B-TREE"))
        .collect();
    assert_eq!(sorts, ["USE TEMP B-TREE FOR ORDER BY"], "{plan:?}");
}

/// The chart of finished attempts reads the results of its minutes by their time: the
/// stored ones through the index of finished rows, the successes the job rows say
/// (migration 34) through the prune's index by state and time, not a scan of the jobs.
#[tokio::test]
async fn the_throughput_reads_its_minutes_by_time() {
    let plan = plan_of(THROUGHPUT, &[0]).await;
    for wanted in [
        "SEARCH jobs_event USING INDEX jobs_event_finished (at>?)",
        "SEARCH jobs_job USING INDEX jobs_job_state_updated_id (state=? AND updated_at>?)",
    ] {
        assert!(
            plan.iter().any(|step| step == wanted),
            "no `{wanted}`: {plan:?}"
        );
    }
    assert!(
        !plan.iter().any(|step| step.starts_with("SCAN jobs_")),
        "scans a table: {plan:?}"
    );
}

/// The prune's index holds only the jobs a prune takes (migration 31): an enqueue,
/// a claim, a retry or a failure writes no entry in it, and SQLite refuses to read
/// such a job through it. The statements of the prune (older builds' included,
/// which are the same) still find it.
#[tokio::test]
async fn the_prune_index_holds_only_succeeded_and_deleted_jobs() {
    let db = TestDb::sqlite().await;
    let storage = db.sqlite_storage();
    for state in ["Succeeded", "Deleted"] {
        sqlx::query(&format!(
            "SELECT count(*) FROM jobs_job INDEXED BY jobs_job_state_updated_id \
             WHERE state = '{state}' AND updated_at < 0"
        ))
        .fetch_one(&storage.reader)
        .await
        .unwrap_or_else(|error| panic!("{state} not through the prune's index: {error}"));
    }
    for state in ["Enqueued", "Scheduled", "Processing", "Failed", "Awaiting"] {
        let read: Result<i64, _> = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM jobs_job INDEXED BY jobs_job_state_updated_id \
             WHERE state = '{state}' AND updated_at < 0"
        ))
        .fetch_one(&storage.reader)
        .await;
        let error = read.expect_err(state).to_string();
        assert!(error.contains("no query solution"), "{state}: {error}");
    }
}

/// The counts by state read the counters, not the job table: they cost the same
/// at any table size.
#[tokio::test]
async fn the_counts_by_state_read_no_job_row() {
    let plan = plan_of(STATE_COUNTS, &[]).await;
    assert!(!plan.is_empty());
    assert!(
        plan.iter().all(|step| !step.contains("jobs_job")),
        "the counts read jobs_job: {plan:?}"
    );
}

/// An idle server's read of the next due job seeks the runnable index once per
/// priority in use: it never walks the waiting jobs (a `MIN(run_at)` read every
/// runnable row through the index of states, tens of milliseconds at 100,000).
#[tokio::test]
async fn the_next_due_job_is_read_by_seeks_per_priority() {
    let plan = plan_of(NEXT_RUN_AT, &[]).await;
    let reads: Vec<&str> = plan
        .iter()
        .map(String::as_str)
        .filter(|step| step.contains("jobs_job"))
        .collect();
    assert_eq!(
        reads,
        [
            "SCAN jobs_job USING INDEX jobs_job_runnable",
            "SEARCH jobs_job USING INDEX jobs_job_runnable (priority<?)",
            "SEARCH jobs_job USING INDEX jobs_job_runnable (priority=?)",
        ],
        "{plan:?}"
    );
}

/// A server that has run for `fail_unserved_after` looks, at every maintenance
/// round and under the write lock, for jobs that waited that long for a server: it
/// seeks the jobs due before then, priority by priority, instead of reading every
/// waiting job (about 30 ms at 100,000).
#[tokio::test]
async fn the_unserved_jobs_are_sought_among_those_due_long_ago_only() {
    let plan = plan_of(&unserved_update(), &[0, 0, 0, 0]).await;
    assert!(
        plan.iter()
            .any(|step| step.contains("jobs_job_runnable (priority=? AND run_at<?)")),
        "{plan:?}"
    );
    let reads: Vec<&String> = plan
        .iter()
        .filter(|step| step.contains("jobs_job ") && !step.contains("jobs_job_runnable"))
        .collect();
    assert!(
        reads.iter().all(|step| step.contains("(id=?)")),
        "reads jobs_job other than by the runnable index or by id: {plan:?}"
    );
}
