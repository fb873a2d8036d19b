//! Transactional enqueue: a job enqueued inside the application's own transaction exists
//! only if that transaction commits, and then runs at once, not at the next poll.

use std::time::Duration;

use crate::support::{Backend, Probe, TestDb, start_time, wait_for_state};
use jobs::prelude::*;
use jobs::{EnqueueConnection, Error, JobServer, Jobs, ManualClock};

backend_tests!(
    rolled_back_transaction_leaves_no_job,
    committed_transaction_runs_the_job,
);

#[job(display = "Confirm order {order}")]
async fn confirm_order(State(probe): State<Probe>, ctx: JobContext, order: i64) {
    let _run = probe.start(ctx.id());
    probe.note(format!("confirmed {order}"));
}

/// Far longer than any wait here: a job that runs in time was woken, not polled for.
const POLL_INTERVAL: Duration = Duration::from_secs(30);

async fn setup(backend: Backend) -> (TestDb, Jobs, Probe, JobServer) {
    let db = TestDb::new(backend).await;
    let jobs = db.jobs(&ManualClock::new(start_time())).await;
    let probe = Probe::new();
    let server = JobServer::builder(jobs.clone())
        .state(probe.clone())
        .poll_interval(POLL_INTERVAL)
        .start()
        .await
        .unwrap();
    (db, jobs, probe, server)
}

/// Saves an order and enqueues its confirmation in one transaction of the application's
/// own pool, then commits or rolls back; returns the job's id.
async fn place_order(db: &TestDb, jobs: &Jobs, order: i64, commit: bool) -> JobId {
    match db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            place_order_in::<sqlx::Sqlite>(pool, jobs, order, commit).await
        }
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            place_order_in::<sqlx::Postgres>(pool, jobs, order, commit).await
        }
    }
}

async fn place_order_in<DB>(pool: sqlx::Pool<DB>, jobs: &Jobs, order: i64, commit: bool) -> JobId
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'c> sqlx::Transaction<'c, DB>: EnqueueConnection,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query("CREATE TABLE IF NOT EXISTS app_order (id bigint PRIMARY KEY)")
        .execute(&pool)
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO app_order (id) VALUES ($1)")
        .bind(order)
        .execute(&mut *tx)
        .await
        .unwrap();
    let id = jobs
        .enqueue(ConfirmOrder { order })
        .within(&mut tx)
        .await
        .unwrap();

    // Until the commit, nobody else sees the job, and no server runs it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(matches!(jobs.get(id).await, Err(Error::JobNotFound(_))));

    if commit {
        tx.commit().await.unwrap();
    } else {
        tx.rollback().await.unwrap();
    }
    let orders = sqlx::query("SELECT id FROM app_order")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        orders.len(),
        usize::from(commit),
        "the order is saved with its job"
    );
    id
}

async fn rolled_back_transaction_leaves_no_job(backend: Backend) {
    let (db, jobs, probe, server) = setup(backend).await;
    let id = place_order(&db, &jobs, 1, false).await;
    // Give a server that was woken by the enqueue every chance to find something.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.shutdown().await;
    assert!(matches!(jobs.get(id).await, Err(Error::JobNotFound(_))));
    assert_eq!(jobs.count_by_state().await.unwrap(), []);
    assert!(probe.notes().is_empty());
}

async fn committed_transaction_runs_the_job(backend: Backend) {
    let (db, jobs, probe, server) = setup(backend).await;
    let id = place_order(&db, &jobs, 2, true).await;
    let info = wait_for_state(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(probe.runs(id), 1);
    assert_eq!(probe.notes(), ["confirmed 2"]);
    assert_eq!(info.display_name, "Confirm order 2");
    let states: Vec<_> = info.history.iter().map(|entry| entry.state).collect();
    assert_eq!(
        states,
        [
            JobState::Enqueued,
            JobState::Processing,
            JobState::Succeeded
        ]
    );
}

#[cfg(all(feature = "sqlite", feature = "postgres"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_of_the_other_backend_is_refused() {
    let sqlite = TestDb::new(Backend::Sqlite).await;
    let postgres = TestDb::new(Backend::Postgres).await;
    let jobs = Jobs::connect(&sqlite.url).await.unwrap();
    let pool = sqlx::PgPool::connect(&postgres.url).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    // A bare connection is accepted like a transaction (and checked the same way).
    let error = jobs
        .enqueue(ConfirmOrder { order: 3 })
        .within(&mut *tx)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Config(message) if message.contains("PostgreSQL connection")),
        "{error}"
    );
}
