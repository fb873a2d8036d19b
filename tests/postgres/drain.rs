//! Drains of a backlog by worker processes on one PostgreSQL database, measured: each
//! execution records its start and end by the database's clock under a key (a queue, a
//! tenant), and the figures are the most ever running at once, overall and of one key,
//! and the mean number running (the executions' total time over the run's).

use std::time::Duration;

use crate::support::process::Child;
use sqlx::PgPool;

/// One execution of a measured job: a row with its key and start, its end once the
/// `millis` of work are done.
pub(crate) async fn execution(pool: &PgPool, key: &str, millis: u64) -> Result<(), sqlx::Error> {
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO execution (key, started) VALUES ($1, clock_timestamp()) RETURNING seq",
    )
    .bind(key)
    .fetch_one(pool)
    .await?;
    tokio::time::sleep(Duration::from_millis(millis)).await;
    sqlx::query("UPDATE execution SET ended = clock_timestamp() WHERE seq = $1")
        .bind(seq)
        .execute(pool)
        .await?;
    Ok(())
}

/// What a worker process of a drain needs: a client on the database it was given, and
/// a pool of `connections` for its jobs to record their executions with.
pub(crate) async fn child_connections(connections: u32) -> (jobs::Jobs, PgPool) {
    let url = crate::support::process::database_url();
    let jobs = jobs::Jobs::connect(&url).await.expect("child connects");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(connections)
        .connect(&url)
        .await
        .expect("job pool");
    (jobs, pool)
}

/// The table the executions are recorded in, on the test's database.
pub(crate) async fn create_executions(pool: &PgPool) {
    sqlx::query(
        "CREATE TABLE execution (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            key text NOT NULL,
            started timestamptz NOT NULL,
            ended timestamptz)",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// Jobs that succeeded at their first attempt, and jobs charged another: a limit that
/// holds jobs back must not charge them for waiting.
pub(crate) async fn first_attempts(pool: &PgPool) -> (i64, i64) {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE state = 'Succeeded' AND attempt = 1), \
             count(*) FILTER (WHERE attempt <> 1) FROM jobs_job",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// What a drain measured.
pub(crate) struct Figures {
    /// The most executions running at once.
    pub(crate) most: i64,
    /// The most executions of one key running at once.
    pub(crate) most_of_a_key: i64,
    /// The executions' total time over the drain's.
    pub(crate) mean: f64,
    pub(crate) took: Duration,
}

/// With `jobs` on the test's database, starts `processes` children of the caller's module (`module_path!()`) in `role` on
/// `url`, waits until `total` jobs succeeded (within `budget`), stops the children and
/// reads the figures; checks that each job ran once.
pub(crate) async fn drain(
    jobs: &jobs::Jobs,
    module: &str,
    role: &str,
    url: &str,
    processes: usize,
    total: u64,
    budget: Duration,
) -> Figures {
    let pool = PgPool::connect(url).await.unwrap();
    let started = std::time::Instant::now();
    let children: Vec<Child> = (0..processes)
        .map(|_| Child::spawn(module, role, url, &[]))
        .collect();
    let deadline = tokio::time::Instant::now() + budget;
    while jobs.count_by_state().await.unwrap() != [(jobs::JobState::Succeeded, total)] {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not drained in time: {:?}",
            jobs.count_by_state().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    for child in children {
        child.stop(Duration::from_secs(20)).await;
    }
    // Ends before starts at the same instant: a job that ended made room for the next.
    let (most, most_of_a_key, mean): (i64, i64, f64) = sqlx::query_as(
        "WITH edge AS ( \
             SELECT key, started AS at, 1 AS step FROM execution \
             UNION ALL SELECT key, ended, -1 FROM execution \
         ), running AS ( \
             SELECT sum(step) OVER (ORDER BY at, step ROWS UNBOUNDED PRECEDING) AS n, \
                 sum(step) OVER (PARTITION BY key ORDER BY at, step ROWS UNBOUNDED PRECEDING) \
                     AS of_key \
             FROM edge \
         ) \
         SELECT (SELECT max(n) FROM running)::bigint, \
             (SELECT max(of_key) FROM running)::bigint, \
             (SELECT sum(extract(epoch FROM ended - started)) \
                 / extract(epoch FROM max(ended) - min(started)) FROM execution)::float8",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    // An execution without an end was stopped (its server fenced itself, say) and ran
    // again elsewhere.
    let (executions, unfinished): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(*) FILTER (WHERE ended IS NULL) FROM execution")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        u64::try_from(executions).unwrap(),
        total,
        "each job ran once ({unfinished} executions never ended)"
    );
    Figures {
        most,
        most_of_a_key,
        mean,
        took,
    }
}
