//! Two applications on one PostgreSQL database, each with its tables in a schema of its
//! own (`ConnectOptions::postgres_schema`): neither sees the other's jobs or runs them,
//! and each one's wake-ups reach its own servers in another client at once.

use std::time::{Duration, Instant};

use crate::support::{Backend, Probe, TestDb, wait_for_state};
use jobs::prelude::*;
use jobs::{ConnectOptions, Error, JobServer, Jobs};
use sqlx::PgPool;

/// Far longer than any wait here: a job that starts in time was woken, not polled for.
const POLL_INTERVAL: Duration = Duration::from_secs(30);

#[job(name = "schemas.ping")]
async fn ping(State(probe): State<Probe>, app: String) {
    probe.note(app);
}

async fn client(db: &TestDb, schema: &str) -> Jobs {
    Jobs::builder()
        .url(&db.url)
        .connect_options(ConnectOptions::default().postgres_schema(schema))
        .connect()
        .await
        .expect("connects with a schema")
}

/// A server of `schema` on a client of its own, so only `LISTEN` can wake it.
async fn server(db: &TestDb, schema: &str, probe: &Probe) -> JobServer {
    JobServer::builder(client(db, schema).await)
        .state(probe.clone())
        .poll_interval(POLL_INTERVAL)
        .start()
        .await
        .expect("server starts")
}

async fn tables_in(pool: &PgPool, schema: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename LIKE 'jobs_%'",
    )
    .bind(schema)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_applications_with_a_schema_each_share_a_database_apart() {
    let db = TestDb::new(Backend::Postgres).await;
    let billing = client(&db, "billing").await;
    let reports = client(&db, "reports").await;
    let pool = PgPool::connect(&db.url).await.unwrap();
    assert!(tables_in(&pool, "billing").await > 5);
    assert_eq!(
        tables_in(&pool, "billing").await,
        tables_in(&pool, "reports").await
    );
    assert_eq!(
        tables_in(&pool, "public").await,
        0,
        "nothing in the default schema"
    );

    let (billing_probe, reports_probe) = (Probe::new(), Probe::new());
    let billing_server = server(&db, "billing", &billing_probe).await;
    let reports_server = server(&db, "reports", &reports_probe).await;
    // Let their first claims pass, so both sleep until a wake-up or their next poll.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let began = Instant::now();
    let invoice = billing
        .enqueue(Ping {
            app: "billing".into(),
        })
        .await
        .unwrap();
    wait_for_state(&billing, invoice, JobState::Succeeded).await;
    let latency = began.elapsed();
    println!("wake-up in schema billing: {latency:?}");
    assert!(
        latency < Duration::from_secs(5),
        "woken, not polled: {latency:?}"
    );
    let report = reports
        .enqueue(Ping {
            app: "reports".into(),
        })
        .await
        .unwrap();
    wait_for_state(&reports, report, JobState::Succeeded).await;

    // Each application sees and runs only its own.
    assert!(
        reports.get(invoice).await.is_err(),
        "no such job in reports"
    );
    assert!(billing.get(report).await.is_err(), "no such job in billing");
    assert_eq!(billing.servers().await.unwrap().len(), 1);
    assert_eq!(reports.servers().await.unwrap().len(), 1);
    billing_server.shutdown().await;
    reports_server.shutdown().await;
    assert_eq!(billing_probe.notes(), ["billing"]);
    assert_eq!(reports_probe.notes(), ["reports"]);
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_name_that_is_no_plain_identifier_is_refused_naming_the_option() {
    let db = TestDb::new(Backend::Postgres).await;
    for bad in ["Billing", "pg_jobs", "a; DROP TABLE x", ""] {
        let error = Jobs::builder()
            .url(&db.url)
            .connect_options(ConnectOptions::default().postgres_schema(bad))
            .connect()
            .await
            .expect_err("refused");
        assert!(
            matches!(&error, Error::Config(message) if message.starts_with("postgres_schema:")),
            "{bad}: {error}"
        );
    }
    let error = Jobs::builder()
        .url("sqlite::memory:")
        .connect_options(ConnectOptions::default().postgres_schema("billing"))
        .connect()
        .await
        .expect_err("refused on SQLite");
    assert!(
        matches!(&error, Error::Config(message) if message.contains("database file of its own")),
        "{error}"
    );
}
