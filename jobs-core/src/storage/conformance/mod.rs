//! The storage conformance suite: each contract of the [`Storage`] trait checked on its
//! own, by calling the trait directly, against every backend compiled in.
//!
//! No server runs and nothing sleeps: every time is a fixed instant passed to the call.
//! Each test gets a database of its own (a SQLite file in a temporary directory, a
//! PostgreSQL database created for it and dropped after it), so tests run in parallel.
//!
//! Test bodies are generic over `S: Storage`; the `conformance!` macro instantiates each
//! of them once per backend, as `<concern>::sqlite::<test>` and `<concern>::postgres::<test>`.

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use super::Schema;
pub(super) use super::stored::{MAX_BACKTRACE_BYTES, MAX_LOG_LINE_BYTES};
pub(super) use super::{
    AdminStore, AnyStorage, ClaimRequest, ClaimedJob, Completion, Fence, FireRequest, Fired,
    LifecycleStore, LogLine, NewJob, Outcome, ProgressUpdate, QueueCounts, QueueSelector,
    Registration, Requeue, ServerRow, Storage, Waiting, WaitingBy,
};
pub(super) use crate::recurring::{NewRecurring, disabled};
pub(super) use crate::{
    Failure, JobId, JobInfo, JobQuery, JobState, JobTemplate, LogLevel, MissedTicks, RecurringInfo,
    RecurringSource, Schedule, ServerQueues,
};

/// A storage on a database of its own, removed when the test ends.
pub(crate) struct TestDb {
    pub(crate) storage: AnyStorage,
    _dir: Option<tempfile::TempDir>,
    #[cfg(feature = "postgres")]
    pg_name: Option<String>,
}

impl TestDb {
    /// A fresh SQLite file in a temporary directory, migrated.
    #[cfg(feature = "sqlite")]
    pub(crate) async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
        let storage = AnyStorage::Sqlite(
            super::sqlite::SqliteStorage::connect(&url, &Default::default(), None)
                .await
                .expect("open SQLite"),
        );
        storage.migrate().await.expect("migrate SQLite");
        Self {
            storage,
            _dir: Some(dir),
            #[cfg(feature = "postgres")]
            pg_name: None,
        }
    }

    /// The storage of a database [`TestDb::sqlite`] made, for a test of what only
    /// SQLite has.
    #[cfg(feature = "sqlite")]
    pub(crate) fn sqlite_storage(&self) -> &super::sqlite::SqliteStorage {
        let AnyStorage::Sqlite(storage) = &self.storage else {
            unreachable!("a SQLite test database");
        };
        storage
    }

    /// The storage of a database [`TestDb::postgres`] made, for a test of what only
    /// PostgreSQL has.
    #[cfg(feature = "postgres")]
    pub(crate) fn postgres_storage(&self) -> &super::postgres::PgStorage {
        let AnyStorage::Postgres(storage) = &self.storage else {
            unreachable!("a PostgreSQL test database");
        };
        storage
    }

    /// A fresh PostgreSQL database on the server of `JOBS_TEST_PG_URL`, migrated.
    #[cfg(feature = "postgres")]
    pub(crate) async fn postgres() -> Self {
        let name = format!("jobs_conf_{}", Uuid::now_v7().simple());
        let admin = pg_admin_url();
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
            .await
            .unwrap_or_else(|error| {
                panic!("PostgreSQL at {admin} (set JOBS_TEST_PG_URL): {error}")
            });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let url = match admin.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("JOBS_TEST_PG_URL needs a database path"),
        };
        // Owned from here on, so that a failed connect still drops the database.
        let db = Self {
            storage: AnyStorage::Postgres(
                super::postgres::PgStorage::connect(&url, &Default::default())
                    .await
                    .expect("connect PostgreSQL"),
            ),
            _dir: None,
            pg_name: Some(name),
        };
        db.storage.migrate().await.expect("migrate PostgreSQL");
        db
    }
}

/// Where the test databases are created: `JOBS_TEST_PG_URL`, by default the local server.
#[cfg(feature = "postgres")]
fn pg_admin_url() -> String {
    std::env::var("JOBS_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

#[cfg(feature = "postgres")]
impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Dropped from a test's runtime, which may be shutting down: use a thread of our own.
        let admin = pg_admin_url();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                if let Ok(mut conn) =
                    <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await
                {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// Instantiates generic test bodies `async fn name<S: Storage>(s: &S)` once per backend
/// compiled in: `conformance!(a, b)` makes `sqlite::a`, `postgres::a`, `sqlite::b`, …
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        #[cfg(feature = "sqlite")]
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = $crate::storage::conformance::TestDb::sqlite().await;
                    super::$name(&db.storage).await;
                }
            )*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = $crate::storage::conformance::TestDb::postgres().await;
                    super::$name(&db.storage).await;
                }
            )*
        }
    };
}
mod admin;
mod concurrency;
mod continuations;
mod counts;
mod fence;
mod key_rates;
mod lease;
mod lifecycle;
mod listing;
mod rates;
mod recurring;
mod running;
mod servers;
mod signals;
mod tools;
mod unique;

/// The instant every test counts from: `at(s)` is `s` seconds after it.
pub(crate) fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap() + Duration::seconds(seconds)
}

/// An id whose order among other such ids is `n`'s.
pub(crate) fn id(n: u128) -> JobId {
    JobId::from(Uuid::from_u128(n))
}

/// A job's history as (time, state, attempt, server), read as the dashboard reads it.
pub(crate) async fn history_of(
    storage: &impl AdminStore,
    job: JobId,
) -> Vec<(DateTime<Utc>, JobState, u32, Option<String>)> {
    let history = storage.job_get(job).await.unwrap().unwrap().history;
    history
        .into_iter()
        .map(|entry| (entry.at, entry.state, entry.attempt, entry.server))
        .collect()
}

/// An `Enqueued` job named `name` with id `id`, due at `at(0)`, created at `at(0)`.
pub(crate) fn job(id: JobId, name: &str) -> NewJob {
    NewJob {
        id,
        name: name.to_owned(),
        display_name: format!("{name} job"),
        payload: "{}".to_owned(),
        state: JobState::Enqueued,
        queue: "default".to_owned(),
        priority: 0,
        run_at: at(0),
        max_retries: None,
        created_at: at(0),
        recurring_id: None,
        parent_id: None,
        on_failure: false,
        batch_id: None,
        labels: Vec::new(),
        trace_context: None,
        fresh_id: false,
        unique: None,
        concurrency: None,
    }
}

/// A continuation of `parent`, `Awaiting`.
pub(super) fn child(id: JobId, parent: JobId, on_failure: bool) -> NewJob {
    NewJob {
        state: JobState::Awaiting,
        parent_id: Some(parent),
        on_failure,
        ..job(id, "child")
    }
}

/// What a clock that reads `now` adds to real time: leases on PostgreSQL run on the
/// database's clock, and this offset makes them run out when the tests' fixed instants
/// say (to within the few milliseconds a call takes: tests of PostgreSQL leases keep a
/// second's margin).
pub(super) fn off(now: DateTime<Utc>) -> Duration {
    now - Utc::now()
}

/// Whether leases compare to the microsecond with the `now` a test passes (SQLite), or
/// follow the database's clock (PostgreSQL).
pub(super) fn exact_leases(s: &AnyStorage) -> bool {
    match s {
        #[cfg(feature = "sqlite")]
        AnyStorage::Sqlite(_) => true,
        #[cfg(feature = "postgres")]
        AnyStorage::Postgres(_) => false,
    }
}

/// A claim by `owner` at `now` of up to `limit` jobs from every queue, leased for a
/// minute, all started at once.
pub(crate) fn claim(owner: &str, now: DateTime<Utc>, limit: u32) -> ClaimRequest<'_> {
    ClaimRequest {
        owner,
        limit,
        now,
        lease_until: now + Duration::seconds(60),
        offset: off(now),
        queues: QueueSelector::All,
        names: None,
        start_now: limit,
        keyed: false,
        rate: None,
    }
}

/// Stores a job labelled `vip` and `tenant:a`, and one without labels.
pub(super) async fn labelled_jobs(storage: &AnyStorage) {
    storage
        .jobs_insert(&[
            NewJob {
                labels: vec!["vip".to_owned(), "tenant:a".to_owned()],
                ..job(id(1), "labelled")
            },
            job(id(2), "plain"),
        ])
        .await
        .unwrap();
}

/// The ids of the jobs listed under `label`.
pub(super) async fn by_label(storage: &AnyStorage, label: &str) -> Vec<JobId> {
    let page = storage
        .jobs_list(&JobQuery::default().label(label))
        .await
        .unwrap();
    page.iter().map(|job| job.id).collect()
}

/// The claim of `id` with `token`.
pub(super) fn fence(id: JobId, token: i64) -> Fence {
    Fence { id, token }
}

/// The result of attempt `attempt` of `id`, reported by `owner`, under the claim that
/// counted that attempt when the job was never released: its token is the attempt.
pub(crate) fn done(id: JobId, owner: &str, attempt: u32, outcome: Outcome) -> Completion {
    Completion {
        id,
        owner: owner.to_owned(),
        token: i64::from(attempt),
        attempt,
        outcome,
        result: None,
        at: at(10),
    }
}

/// A job that must exist.
pub(super) async fn get<S: Storage>(s: &S, id: JobId) -> JobInfo {
    s.job_get(id).await.expect("job_get").expect("job exists")
}

/// The state of a job that must exist.
pub(super) async fn state<S: Storage>(s: &S, id: JobId) -> JobState {
    get(s, id).await.state
}

/// Inserts `jobs` and claims them all for `owner` at `at(1)`; returns the claims.
pub(super) async fn insert_and_claim<S: Storage>(
    s: &S,
    jobs: &[NewJob],
    owner: &str,
) -> Vec<ClaimedJob> {
    s.jobs_insert(jobs).await.unwrap();
    let claimed = s.jobs_claim(claim(owner, at(1), 100)).await.unwrap();
    assert_eq!(claimed.len(), jobs.len(), "every inserted job claimed");
    claimed
}

/// The ids of `claimed`, sorted.
pub(super) fn ids(claimed: &[ClaimedJob]) -> Vec<JobId> {
    let mut ids: Vec<JobId> = claimed.iter().map(|job| job.id).collect();
    ids.sort_by_key(JobId::as_uuid);
    ids
}
