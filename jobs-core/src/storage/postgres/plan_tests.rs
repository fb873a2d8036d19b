//! The plans of the claim (on a big table whose statistics are stale), of the results
//! and of what running jobs write, of the counts per queue and by state, of the prune
//! and of the page of one name.

use chrono::Utc;
use sqlx::postgres::PgPoolOptions;

use super::PgStorage;
use crate::JobState;
use crate::job::info::LogLevel;
use crate::storage::conformance::{TestDb, claim, done};
use crate::storage::{
    AdminStore, ClaimRequest, Completion, EventWait, LifecycleStore, LogLine, Outcome,
    ProgressUpdate, QueueSelector, RunningStore, SignalStore, WaitState,
};

/// A storage on `storage`'s database through one connection of its own, so that the
/// tuples [`reads`] counts are those of the calls made through it.
pub(super) async fn one_connection(storage: &PgStorage) -> PgStorage {
    let options = (*storage.pool.connect_options()).clone();
    PgStorage::from_pool(
        PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap(),
    )
}

/// Tuples of `jobs_job` read so far by the backend of `storage`'s one connection:
/// through its indexes, and by sequential scans.
pub(super) async fn reads(storage: &PgStorage) -> (i64, i64) {
    let mut conn = storage.pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query_as(
        "SELECT coalesce(idx_tup_fetch, 0)::bigint, coalesce(seq_tup_read, 0)::bigint \
         FROM pg_stat_user_tables WHERE relname = 'jobs_job'",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap()
}

/// Adds `rows` jobs of `queue` in `state`, due within the last hour.
async fn fill(storage: &PgStorage, state: &str, queue: &str, rows: i64) {
    sqlx::query(
        "INSERT INTO jobs_job (id, name, display_name, payload, state, queue, priority, \
             run_at, attempt, created_at, updated_at) \
         SELECT gen_random_uuid(), 'noop', 'noop', '{}', $1, $2, 0, \
             now() - interval '1 hour' + i * interval '1 ms', 0, now(), now() \
         FROM generate_series(1, $3) AS i",
    )
    .bind(state)
    .bind(queue)
    .bind(rows)
    .execute(&storage.pool)
    .await
    .unwrap();
}

/// Brings the planner's statistics of `jobs_job` up to date.
async fn analyze(storage: &PgStorage) {
    sqlx::query("ANALYZE jobs_job")
        .execute(&storage.pool)
        .await
        .unwrap();
}

/// A big table of finished jobs, analyzed: 50,000 succeeded and 300 enqueued in the
/// default queue, 200 failed in `failed_queue`.
async fn finished_table(storage: &PgStorage, failed_queue: &str) {
    fill(storage, "Succeeded", "default", 50_000).await;
    fill(storage, "Enqueued", "default", 300).await;
    fill(storage, "Failed", failed_queue, 200).await;
    analyze(storage).await;
}

/// 50,000 succeeded jobs, analyzed, then a backlog of 5,000 enqueued ones that the
/// statistics do not know of.
async fn backlog_after_analyze(storage: &PgStorage) {
    fill(storage, "Succeeded", "default", 50_000).await;
    analyze(storage).await;
    fill(storage, "Enqueued", "default", 5_000).await;
}

/// [`backlog_after_analyze`], then 5,000 of its jobs claimed by server `s`: thousands
/// of running jobs the statistics do not know of.
async fn running_after_analyze(storage: &PgStorage) -> Vec<crate::storage::ClaimedJob> {
    backlog_after_analyze(storage).await;
    let claimed = storage
        .jobs_claim(claim("s", Utc::now(), 5_000))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 5_000);
    claimed
}

/// A backlog that arrives after the last `ANALYZE` of a table of finished jobs (under
/// autovacuum's threshold, the statistics still say "no runnable rows"): the claim reads
/// the rows it takes, not every runnable row before a sort, and finds them again by
/// their key (a scan of the whole table to join them came with the function's default
/// estimate of 1,000 rows).
#[tokio::test]
async fn a_claim_after_a_backlog_on_a_big_analyzed_table_reads_only_what_it_takes() {
    let db = TestDb::postgres().await;
    let storage = db.postgres_storage();
    backlog_after_analyze(storage).await;

    // One connection, so that the index reads counted are the claim's.
    let one = one_connection(storage).await;
    let before = reads(&one).await;
    let claimed = one.jobs_claim(claim("s", Utc::now(), 100)).await.unwrap();
    assert_eq!(claimed.len(), 100);
    let after = reads(&one).await;
    let (fetched, scanned) = (after.0 - before.0, after.1 - before.1);
    assert!(
        fetched <= 400,
        "the claim of 100 fetched {fetched} rows through indexes, of 5,000 runnable"
    );
    assert_eq!(
        scanned, 0,
        "the claim of 100 scanned {scanned} rows of the table"
    );
}

/// Results written while thousands of jobs run, on a big table analyzed before any of
/// them ran (so the statistics say no job is `Processing`): the write finds its jobs by
/// their ids, not by hashing every running job from a partial index on `Processing`,
/// whose entries (dead ones too, until a vacuum) grow with every job claimed since. That
/// plan made a drain of 100,000 jobs on 1,000,000 old ones fall to a fifth of its speed.
#[tokio::test]
async fn results_among_thousands_of_running_jobs_read_only_their_own_rows() {
    let db = TestDb::postgres().await;
    let storage = db.postgres_storage();
    let claimed = running_after_analyze(storage).await;

    let one = one_connection(storage).await;
    let completions: Vec<Completion> = claimed[..100]
        .iter()
        .map(|job| done(job.id, "s", job.attempt, Outcome::Succeeded))
        .collect();
    let before = reads(&one).await;
    one.jobs_complete(&completions).await.unwrap();
    let after = reads(&one).await;
    let (fetched, scanned) = (after.0 - before.0, after.1 - before.1);
    let counts = one.jobs_count().await.unwrap();
    assert!(
        counts.contains(&(JobState::Succeeded, 50_100)),
        "the 100 results are written: {counts:?}"
    );
    assert!(
        fetched <= 400,
        "100 results fetched {fetched} rows through indexes, among 5,000 running jobs"
    );
    assert_eq!(
        scanned, 0,
        "100 results scanned {scanned} rows of the table"
    );
}

/// What running jobs write besides their results, among 5,000 running jobs, with
/// statistics taken before any of them ran: the log lines and progress of 100 of them, a
/// durable step and a wait for an event. Like the results, each finds its jobs by their
/// ids; each used to walk the entries of a partial index on `Processing` (about 5,000
/// rows fetched for 100 log lines, and for a single step).
#[tokio::test]
async fn what_running_jobs_write_reads_only_their_own_rows_among_thousands() {
    let db = TestDb::postgres().await;
    let storage = db.postgres_storage();
    let claimed = running_after_analyze(storage).await;
    let some = &claimed[..100];

    let one = one_connection(storage).await;
    let lines: Vec<LogLine> = some
        .iter()
        .map(|job| LogLine {
            job_id: job.id,
            token: job.token,
            at: Utc::now(),
            attempt: job.attempt,
            level: LogLevel::Info,
            message: "working".to_owned(),
        })
        .collect();
    let before = reads(&one).await;
    one.logs_insert(&lines).await.unwrap();
    let after = reads(&one).await;
    let (fetched, scanned) = (after.0 - before.0, after.1 - before.1);
    assert!(
        fetched <= 400,
        "100 log lines fetched {fetched} rows through indexes, among 5,000 running jobs"
    );
    assert_eq!(
        scanned, 0,
        "100 log lines scanned {scanned} rows of the table"
    );

    let updates: Vec<ProgressUpdate> = some
        .iter()
        .map(|job| ProgressUpdate {
            job_id: job.id,
            token: job.token,
            done: 1,
            total: 2,
        })
        .collect();
    let before = reads(&one).await;
    one.progress_update(&updates).await.unwrap();
    let after = reads(&one).await;
    let (fetched, scanned) = (after.0 - before.0, after.1 - before.1);
    assert!(
        fetched <= 400,
        "100 progress updates fetched {fetched} rows through indexes, among 5,000 running jobs"
    );
    assert_eq!(
        scanned, 0,
        "100 progress updates scanned {scanned} rows of the table"
    );

    // A durable step of one job reads that job's row only.
    let before = reads(&one).await;
    one.step_put(some[0].fence(), "summary", "\"done\"", Utc::now())
        .await
        .unwrap();
    let after = reads(&one).await;
    let (fetched, scanned) = (after.0 - before.0, after.1 - before.1);
    assert!(
        fetched <= 10,
        "a step fetched {fetched} rows through indexes, among 5,000 running jobs"
    );
    assert_eq!(scanned, 0, "a step scanned {scanned} rows of the table");

    // So does a job's wait for an event.
    let wait = EventWait {
        name: "approval".to_owned(),
        key: "42".to_owned(),
    };
    let now = Utc::now();
    let before = reads(&one).await;
    let state = one
        .signal_wait(
            some[1].fence(),
            &wait,
            chrono::Duration::hours(1),
            now - chrono::Duration::days(1),
            now,
        )
        .await
        .unwrap();
    let after = reads(&one).await;
    assert!(matches!(state, WaitState::Pending { .. }), "{state:?}");
    let (fetched, scanned) = (after.0 - before.0, after.1 - before.1);
    assert!(
        fetched <= 20,
        "a wait fetched {fetched} rows through indexes, among 5,000 running jobs"
    );
    assert_eq!(scanned, 0, "a wait scanned {scanned} rows of the table");

    // All were written, once per job.
    let written: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM jobs_log), \
             (SELECT count(*) FROM jobs_job WHERE progress_done = 1 AND progress_total = 2)",
    )
    .fetch_one(&storage.pool)
    .await
    .unwrap();
    assert_eq!(written, (100, 100));
}

/// The counts per queue on a big table of finished jobs read the unfinished rows
/// through the index on the state, never the succeeded ones.
#[tokio::test]
async fn the_counts_per_queue_read_only_unfinished_rows() {
    let db = TestDb::postgres().await;
    let storage = db.postgres_storage();
    finished_table(storage, "mail").await;

    let one = one_connection(storage).await;
    let before = reads(&one).await;
    let counts = one.jobs_count_by_queue(Utc::now()).await.unwrap();
    let after = reads(&one).await;
    let counted: Vec<(&str, u64, u64)> = counts
        .iter()
        .map(|count| (count.queue.as_str(), count.waiting, count.failed))
        .collect();
    assert_eq!(counted, [("default", 300, 0), ("mail", 0, 200)]);
    let (fetched, scanned) = (after.0 - before.0, after.1 - before.1);
    assert_eq!(scanned, 0, "the counts scanned {scanned} rows of the table");
    assert!(
        fetched <= 1_000,
        "the counts fetched {fetched} rows through indexes, of 500 unfinished"
    );
}

/// A claim of some queues passes over the backlog of the others: a queue paused (or
/// claimed on its own, being limited) with thousands of jobs due before every other
/// queue's costs the claims of the other queues nothing. Each claim reads the rows
/// it takes, through the queue's own index; they used to walk the whole backlog.
#[tokio::test]
async fn a_claim_of_some_queues_passes_over_the_backlog_of_the_others() {
    let db = TestDb::postgres().await;
    let storage = db.postgres_storage();
    let fill_due = |queue: &'static str, rows: i64, hours_ago: i32| {
        sqlx::query(
            "INSERT INTO jobs_job (id, name, display_name, payload, state, queue, priority, \
                 run_at, attempt, created_at, updated_at) \
             SELECT gen_random_uuid(), 'noop', 'noop', '{}', 'Enqueued', $1, 0, \
                 now() - $3 * interval '1 hour' + i * interval '1 ms', 0, now(), now() \
             FROM generate_series(1, $2) AS i",
        )
        .bind(queue)
        .bind(rows)
        .bind(hours_ago)
        .execute(&storage.pool)
    };
    // The paused queue's jobs come first in claim order, the others after them.
    fill_due("paused", 20_000, 2).await.unwrap();
    fill_due("mail", 300, 1).await.unwrap();
    fill_due("llm", 300, 1).await.unwrap();
    analyze(storage).await;

    let one = one_connection(storage).await;
    let paused = ["paused".to_owned()];
    let served = ["mail".to_owned(), "llm".to_owned()];
    let selectors = [
        ("every queue but one", QueueSelector::AllExcept(&paused)),
        ("the queues served", QueueSelector::Among(&served)),
        ("one queue", QueueSelector::Only("mail")),
        (
            "a capped queue",
            QueueSelector::Capped {
                queue: "llm",
                global: 1_000,
            },
        ),
    ];
    for (what, queues) in selectors {
        let before = reads(&one).await;
        let claimed = one
            .jobs_claim(ClaimRequest {
                queues,
                ..claim("s", Utc::now(), 100)
            })
            .await
            .unwrap();
        let after = reads(&one).await;
        assert_eq!(claimed.len(), 100, "{what}");
        assert!(
            claimed.iter().all(|job| job.queue != "paused"),
            "{what}: claimed a job of the queue left out"
        );
        let (fetched, scanned) = (after.0 - before.0, after.1 - before.1);
        assert!(
            fetched <= 1_000,
            "{what}: the claim of 100 fetched {fetched} rows through indexes"
        );
        assert_eq!(scanned, 0, "{what}: the claim scanned {scanned} rows");
    }
}

/// A prune batch reads about the rows it deletes, however many old rows wait behind
/// them and whatever the statistics say: here they were taken while a backlog waited,
/// which then ran and passed its retention, so they count no succeeded or deleted row.
/// Each state's old rows come oldest first through the index on the state and the time
/// of the last change, which serves the order too (an `OR` of both states in id order,
/// planned for the few rows the statistics promised, read every prunable row and
/// sorted them, at every batch).
#[tokio::test]
async fn a_prune_batch_reads_about_the_rows_it_deletes_whatever_the_backlog() {
    let db = TestDb::postgres().await;
    let storage = db.postgres_storage();
    sqlx::query(
        "INSERT INTO jobs_job (id, name, display_name, payload, state, queue, priority, \
             run_at, attempt, created_at, updated_at) \
         SELECT gen_random_uuid(), 'noop', 'noop', '{}', 'Enqueued', 'default', 0, now(), \
             0, now(), now() \
         FROM generate_series(1, 80000)",
    )
    .execute(&storage.pool)
    .await
    .unwrap();
    analyze(storage).await;
    // The backlog ran: old rows of both states, and younger succeeded ones mixed in
    // by id.
    sqlx::query(
        "UPDATE jobs_job SET \
             state = CASE WHEN random() < 0.2 THEN 'Deleted' ELSE 'Succeeded' END, \
             updated_at = CASE WHEN random() < 0.75 \
                 THEN now() - interval '2 days' + random() * interval '1 hour' \
                 ELSE now() END",
    )
    .execute(&storage.pool)
    .await
    .unwrap();

    let one = one_connection(storage).await;
    let cutoff = Utc::now() - chrono::Duration::hours(1);
    for _ in 0..3 {
        let before = reads(&one).await;
        let pruned = one.jobs_prune(cutoff, cutoff, 1_000).await.unwrap();
        let after = reads(&one).await;
        assert_eq!(pruned, 1_000);
        let (fetched, scanned) = (after.0 - before.0, after.1 - before.1);
        assert_eq!(scanned, 0, "the prune of 1,000 scanned {scanned} rows");
        assert!(
            fetched <= 4_000,
            "the prune of 1,000 fetched {fetched} rows through indexes, of 60,000 old"
        );
    }
    // The count of the jobs that passed their retention between two rounds reads those.
    let (from, to) = (
        Utc::now() - chrono::Duration::hours(48) + chrono::Duration::minutes(50),
        Utc::now() - chrono::Duration::hours(48) + chrono::Duration::minutes(51),
    );
    let before = reads(&one).await;
    let due = one.jobs_count_prunable(from..to, from..to).await.unwrap();
    let after = reads(&one).await;
    assert!((500..=1_500).contains(&due), "{due} in a minute of 60,000");
    let (fetched, scanned) = (after.0 - before.0, after.1 - before.1);
    assert_eq!(scanned, 0, "the count scanned {scanned} rows");
    assert!(
        fetched <= 2_000,
        "the count of {due} fetched {fetched} rows"
    );
}

/// The dashboard's page of one name, on a table whose newest jobs are of other names:
/// it reads the name's own rows through their index, not every newer job of the others
/// down the primary key (nor the table, to sort it).
#[tokio::test]
async fn a_page_of_one_name_reads_only_that_names_jobs() {
    let db = TestDb::postgres().await;
    let storage = db.postgres_storage();
    // Ids in the order given: every job of `rare` is older than every `noop` one.
    let fill_named = |name: &'static str, first: &'static str, rows: i64| {
        sqlx::query(
            "INSERT INTO jobs_job (id, name, display_name, payload, state, queue, priority, \
                 run_at, attempt, created_at, updated_at) \
             SELECT ($2 || '-0000-7000-8000-' || lpad(i::text, 12, '0'))::uuid, $1, $1, \
                 '{}', 'Succeeded', 'default', 0, now(), 1, now(), now() \
             FROM generate_series(1, $3) AS i",
        )
        .bind(name)
        .bind(first)
        .bind(rows)
        .execute(&storage.pool)
    };
    fill_named("rare", "00000000", 5_000).await.unwrap();
    fill_named("noop", "10000000", 30_000).await.unwrap();
    analyze(storage).await;

    let one = one_connection(storage).await;
    let query = crate::JobQuery::default().name("rare").limit(50);
    for query in [query.clone(), query.after(crate::JobId::new())] {
        let before = reads(&one).await;
        let page = one.jobs_list(&query).await.unwrap();
        let after = reads(&one).await;
        assert_eq!(page.len(), 50);
        assert!(page.iter().all(|job| job.name == "rare"));
        let (fetched, scanned) = (after.0 - before.0, after.1 - before.1);
        assert_eq!(scanned, 0, "the page scanned {scanned} rows of the table");
        assert!(
            fetched <= 200,
            "the page of 50 fetched {fetched} rows through indexes"
        );
    }
}

/// The counts by state on a big table read the counters the triggers keep, not a row
/// of the job table: they cost the same at any table size.
#[tokio::test]
async fn the_counts_by_state_read_no_job_row() {
    let db = TestDb::postgres().await;
    let storage = db.postgres_storage();
    finished_table(storage, "default").await;

    let one = one_connection(storage).await;
    let before = reads(&one).await;
    let counts = one.jobs_count().await.unwrap();
    let after = reads(&one).await;
    assert_eq!(
        counts,
        [
            (JobState::Enqueued, 300),
            (JobState::Failed, 200),
            (JobState::Succeeded, 50_000)
        ]
    );
    let (fetched, scanned) = (after.0 - before.0, after.1 - before.1);
    assert_eq!(
        (fetched, scanned),
        (0, 0),
        "the counts read {fetched} rows of jobs_job through indexes and scanned {scanned}"
    );
}
