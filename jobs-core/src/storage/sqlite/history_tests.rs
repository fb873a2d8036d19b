//! The history rows a job's row says instead: its creation (migration 32), each
//! attempt's start (migration 33) and its success (migration 34). A new job writes no
//! row for any of them; a job an older build stores or claims gets them from the
//! triggers, and a success left gets its row then, each read once.

use crate::JobState;
use crate::storage::conformance::{TestDb, at, claim, done, history_of, id, job};
use crate::storage::{AdminStore, LifecycleStore, Outcome};

/// The history rows stored for `job`.
async fn stored_rows(storage: &super::SqliteStorage, job: crate::JobId) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs_event WHERE job_id = ?")
        .bind(job.to_string())
        .fetch_one(&storage.reader)
        .await
        .unwrap()
}

/// Runs `statement` as an older build would, through the writer: `?1` is `job`'s id,
/// `?2`, `?3`, … the `times` in microseconds.
async fn as_older_build(
    storage: &super::SqliteStorage,
    statement: &str,
    job: crate::JobId,
    times: &[chrono::DateTime<chrono::Utc>],
) {
    let mut query = sqlx::query(statement).bind(job.to_string());
    for time in times {
        query = query.bind(time.timestamp_micros());
    }
    query
        .execute(&mut *storage.writer.lock().await.unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn an_enqueue_writes_no_history_row_and_its_history_begins_with_its_creation() {
    let db = TestDb::sqlite().await;
    let storage = db.sqlite_storage();
    let mut scheduled = job(id(2), "later");
    scheduled.state = JobState::Scheduled;
    scheduled.run_at = at(60);
    scheduled.created_at = at(5);
    storage
        .jobs_insert(&[job(id(1), "now"), scheduled])
        .await
        .unwrap();
    for (job, state, created) in [
        (id(1), JobState::Enqueued, at(0)),
        (id(2), JobState::Scheduled, at(5)),
    ] {
        assert_eq!(stored_rows(storage, job).await, 0, "{job}");
        let history = storage.job_get(job).await.unwrap().unwrap().history;
        assert_eq!(history.len(), 1, "{history:?}");
        let first = &history[0];
        assert_eq!(
            (
                first.at,
                first.state,
                first.attempt,
                first.server.as_deref()
            ),
            (created, state, 0, None)
        );
        assert!(first.error.is_none());
    }
    // A claim's entry comes after the creation's.
    storage
        .jobs_claim(crate::storage::conformance::claim("a", at(1), 1))
        .await
        .unwrap();
    let history = storage.job_get(id(1)).await.unwrap().unwrap().history;
    let states: Vec<JobState> = history.iter().map(|entry| entry.state).collect();
    assert_eq!(states, [JobState::Enqueued, JobState::Processing]);
}

/// An older build's insert names no `created_state`: the trigger writes the row of its
/// creation, as before, and the history shows it once.
#[tokio::test]
async fn a_job_an_older_build_stores_keeps_its_creation_row_read_once() {
    let db = TestDb::sqlite().await;
    let storage = db.sqlite_storage();
    as_older_build(
        storage,
        "INSERT INTO jobs_job (id, name, display_name, payload, state, queue, priority, \
             run_at, created_at, updated_at) \
         VALUES (?1, 'old', 'old job', '{}', 'Enqueued', 'default', 0, ?2, ?2, ?2)",
        id(1),
        &[at(0)],
    )
    .await;
    assert_eq!(stored_rows(storage, id(1)).await, 1);
    let history = storage.job_get(id(1)).await.unwrap().unwrap().history;
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(
        (history[0].at, history[0].state, history[0].attempt),
        (at(0), JobState::Enqueued, 0)
    );
}

#[tokio::test]
async fn a_claim_writes_no_history_row_and_the_row_that_ends_its_attempt_says_its_start() {
    let db = TestDb::sqlite().await;
    let storage = db.sqlite_storage();
    storage.jobs_insert(&[job(id(1), "one")]).await.unwrap();
    let claimed = storage.jobs_claim(claim("a", at(1), 1)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(stored_rows(storage, id(1)).await, 0);
    let running = vec![
        (at(0), JobState::Enqueued, 0, None),
        (at(1), JobState::Processing, 1, Some("a".to_owned())),
    ];
    assert_eq!(history_of(storage, id(1)).await, running);
    // The result's row, one for the attempt, gives its start before its end.
    let retry = Outcome::Retry {
        at: at(20),
        failure: crate::Failure::new("again"),
    };
    storage
        .jobs_complete(&[done(id(1), "a", 1, retry)])
        .await
        .unwrap();
    assert_eq!(stored_rows(storage, id(1)).await, 1);
    let mut ended = running;
    ended.push((at(10), JobState::Scheduled, 1, Some("a".to_owned())));
    assert_eq!(history_of(storage, id(1)).await, ended);
}

/// The entries of the minute's finished attempts on the dashboard's chart.
async fn throughput(storage: &super::SqliteStorage) -> Vec<(u64, u64)> {
    let points = storage.jobs_throughput(at(0)).await.unwrap();
    points
        .iter()
        .map(|point| (point.succeeded, point.failed))
        .collect()
}

/// Enqueues job 1, claims it on server `a` at 12:00:01 and records its success at
/// 12:00:10: the entries of [`first_success`].
async fn succeed_once(storage: &super::SqliteStorage) {
    storage.jobs_insert(&[job(id(1), "one")]).await.unwrap();
    storage.jobs_claim(claim("a", at(1), 1)).await.unwrap();
    storage
        .jobs_complete(&[done(id(1), "a", 1, Outcome::Succeeded)])
        .await
        .unwrap();
}

/// The history of [`succeed_once`]'s job: its creation, its attempt's start, its success.
fn first_success() -> [(chrono::DateTime<chrono::Utc>, JobState, u32, Option<String>); 3] {
    [
        (at(0), JobState::Enqueued, 0, None),
        (at(1), JobState::Processing, 1, Some("a".to_owned())),
        (at(10), JobState::Succeeded, 1, Some("a".to_owned())),
    ]
}

/// A success is said by the job row: its result stores no row, and the history ends
/// with the attempt's start and its end; the chart counts it.
#[tokio::test]
async fn a_success_writes_no_history_row_and_the_history_ends_with_it() {
    let db = TestDb::sqlite().await;
    let storage = db.sqlite_storage();
    succeed_once(storage).await;
    assert_eq!(stored_rows(storage, id(1)).await, 0);
    assert_eq!(history_of(storage, id(1)).await, first_success());
    assert_eq!(throughput(storage).await, [(1, 0)]);
}

/// A success left (an operator's requeue) gets its row from the trigger, before the
/// requeue's own; the next attempt's entries follow, and the chart counts each once.
#[tokio::test]
async fn a_success_left_keeps_its_entries_in_order() {
    let db = TestDb::sqlite().await;
    let storage = db.sqlite_storage();
    succeed_once(storage).await;
    storage
        .job_requeue(id(1), at(20), chrono::Duration::zero())
        .await
        .unwrap();
    assert_eq!(stored_rows(storage, id(1)).await, 2);
    let again = storage.jobs_claim(claim("b", at(30), 1)).await.unwrap();
    let failed = crate::storage::Completion {
        at: at(40),
        token: again[0].token,
        ..done(
            id(1),
            "b",
            again[0].attempt,
            Outcome::Failed {
                failure: crate::Failure::new("no"),
            },
        )
    };
    storage.jobs_complete(&[failed]).await.unwrap();
    let history = history_of(storage, id(1)).await;
    assert_eq!(history[..3], first_success());
    let states: Vec<JobState> = history[3..].iter().map(|entry| entry.1).collect();
    assert_eq!(
        states,
        [JobState::Enqueued, JobState::Processing, JobState::Failed]
    );
    assert_eq!(throughput(storage).await, [(1, 1)]);
}

/// A success left and then succeeded again by an older build, which writes its own
/// rows: the first success shows once, from its row, and the second once.
#[tokio::test]
async fn a_success_left_then_an_older_builds_success_shows_each_once() {
    let db = TestDb::sqlite().await;
    let storage = db.sqlite_storage();
    succeed_once(storage).await;
    for (statement, times) in [
        (
            "UPDATE jobs_job SET state = 'Enqueued', run_at = ?2, updated_at = ?2 \
             WHERE id = ?1",
            &[at(20)][..],
        ),
        (
            "UPDATE jobs_job SET state = 'Processing', attempt = attempt + 1, \
                 token = token + 1, owner = 'old', lease_until = ?3, updated_at = ?2 \
             WHERE id = ?1",
            &[at(30), at(90)][..],
        ),
        (
            "UPDATE jobs_job SET state = 'Succeeded', owner = NULL, lease_until = NULL, \
                 updated_at = ?2 WHERE id = ?1",
            &[at(40)][..],
        ),
        (
            "INSERT INTO jobs_event (job_id, at, state, attempt, server) \
             VALUES (?1, ?2, 'Succeeded', 2, 'old')",
            &[at(40)][..],
        ),
    ] {
        as_older_build(storage, statement, id(1), times).await;
    }
    let mut both = first_success().to_vec();
    both.extend([
        (at(30), JobState::Processing, 2, Some("old".to_owned())),
        (at(40), JobState::Succeeded, 2, Some("old".to_owned())),
    ]);
    assert_eq!(history_of(storage, id(1)).await, both);
    assert_eq!(throughput(storage).await, [(2, 0)]);
}

/// Every other way out of `Processing` (here a release, then a delete of the next
/// attempt) gets the start's row from the trigger, before the row of the way out.
#[tokio::test]
async fn an_attempt_ended_otherwise_keeps_its_start_in_order() {
    let db = TestDb::sqlite().await;
    let storage = db.sqlite_storage();
    storage.jobs_insert(&[job(id(1), "one")]).await.unwrap();
    storage.jobs_claim(claim("a", at(1), 1)).await.unwrap();
    assert_eq!(storage.jobs_release("a", None, at(2)).await.unwrap(), 1);
    storage.jobs_claim(claim("b", at(3), 1)).await.unwrap();
    assert!(storage.job_delete(id(1), at(4)).await.unwrap());
    assert_eq!(
        history_of(storage, id(1)).await,
        [
            (at(0), JobState::Enqueued, 0, None),
            (at(1), JobState::Processing, 1, Some("a".to_owned())),
            (at(2), JobState::Enqueued, 0, Some("a".to_owned())),
            (at(3), JobState::Processing, 1, Some("b".to_owned())),
            (at(4), JobState::Deleted, 1, None),
        ]
    );
}

/// An older build's claim names no start: the trigger writes its row as before, and
/// this build's result of that attempt does not say the start again.
#[tokio::test]
async fn an_attempt_an_older_build_claims_keeps_its_start_row_read_once() {
    let db = TestDb::sqlite().await;
    let storage = db.sqlite_storage();
    storage.jobs_insert(&[job(id(1), "one")]).await.unwrap();
    as_older_build(
        storage,
        "UPDATE jobs_job SET state = 'Processing', attempt = attempt + 1, \
             token = token + 1, owner = 'old', lease_until = ?3, updated_at = ?2 \
         WHERE id = ?1",
        id(1),
        &[at(1), at(61)],
    )
    .await;
    assert_eq!(stored_rows(storage, id(1)).await, 1);
    storage
        .jobs_complete(&[done(id(1), "old", 1, Outcome::Succeeded)])
        .await
        .unwrap();
    assert_eq!(
        history_of(storage, id(1)).await,
        [
            (at(0), JobState::Enqueued, 0, None),
            (at(1), JobState::Processing, 1, Some("old".to_owned())),
            (at(10), JobState::Succeeded, 1, Some("old".to_owned())),
        ]
    );
}

/// An attempt this build claims whose result does not write its start: an uncharged one
/// (put back unstarted), and an older build's result (its statements, which know no
/// start). The trigger writes the start's row, before the result's.
#[tokio::test]
async fn a_result_that_does_not_say_the_start_gets_its_row_from_the_trigger() {
    let db = TestDb::sqlite().await;
    let storage = db.sqlite_storage();
    storage
        .jobs_insert(&[job(id(1), "one"), job(id(2), "two")])
        .await
        .unwrap();
    assert_eq!(
        storage
            .jobs_claim(claim("a", at(1), 2))
            .await
            .unwrap()
            .len(),
        2
    );
    let unstarted = Outcome::NotStarted {
        at: at(10),
        note: "not started".to_owned(),
    };
    storage
        .jobs_complete(&[done(id(1), "a", 1, unstarted)])
        .await
        .unwrap();
    for statement in [
        "UPDATE jobs_job SET state = 'Succeeded', owner = NULL, lease_until = NULL, \
             updated_at = ?2 WHERE id = ?1",
        "INSERT INTO jobs_event (job_id, at, state, attempt, server) \
         VALUES (?1, ?2, 'Succeeded', 1, 'a')",
    ] {
        as_older_build(storage, statement, id(2), &[at(10)]).await;
    }
    let start = (at(1), JobState::Processing, 1, Some("a".to_owned()));
    assert_eq!(
        history_of(storage, id(1)).await,
        [
            (at(0), JobState::Enqueued, 0, None),
            start.clone(),
            (at(10), JobState::Enqueued, 0, Some("a".to_owned())),
        ]
    );
    assert_eq!(
        history_of(storage, id(2)).await,
        [
            (at(0), JobState::Enqueued, 0, None),
            start,
            (at(10), JobState::Succeeded, 1, Some("a".to_owned())),
        ]
    );
    assert_eq!(stored_rows(storage, id(1)).await, 2);
    assert_eq!(stored_rows(storage, id(2)).await, 2);
}
