//! What every end-to-end test shares: a fresh database per test on each backend, a
//! probe that jobs report to, and polling helpers that wait on conditions, not time.
//! Each test binary includes this module (`#[macro_use] mod support;`, for
//! [`backend_tests!`]); its submodules hold what some binaries need.

#![allow(dead_code, unreachable_pub)]

pub mod browser;
pub mod dashboard;
pub mod example_binary;
pub mod fault;
pub mod http;
pub mod process;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use jobs::{JobId, JobInfo, JobServer, JobServerBuilder, JobState, Jobs, ManualClock};

/// The storage a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres,
}

/// A database that exists for one test only.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
    #[cfg(feature = "postgres")]
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        init_logs();
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
                Self {
                    url,
                    backend,
                    _dir: Some(dir),
                    #[cfg(feature = "postgres")]
                    pg_name: None,
                }
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                let name = format!("jobs_test_{}", uuid::Uuid::now_v7().simple());
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
                Self {
                    url,
                    backend,
                    _dir: None,
                    pg_name: Some(name),
                }
            }
        }
    }

    /// A client on this database reading `clock`.
    pub async fn jobs(&self, clock: &ManualClock) -> Jobs {
        Jobs::builder()
            .url(&self.url)
            .clock(clock.clone())
            .connect()
            .await
            .expect("connect")
    }
}

/// Where the test databases are created: `JOBS_TEST_PG_URL`, by default the local server.
#[cfg(feature = "postgres")]
pub fn pg_admin_url() -> String {
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

/// With `JOBS_TEST_LOG` set to a filter (`jobs_core=warn`, say), the library's log lines
/// go to stderr, uncaptured and from every test at once: for running one test alone
/// while hunting a failure (a put-back that failed, a lease lost). Off by default.
pub fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("JOBS_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .try_init();
        }
    });
}

/// Runs one async test body against each backend compiled in:
/// `backend_tests!(runs_once, retries_with_backoff);` makes `sqlite::runs_once`,
/// `postgres::runs_once`, … each calling `runs_once(Backend::…)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Sqlite).await
                }
            )*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Postgres).await
                }
            )*
        }
    };
}

/// Rewrites a stored job behind the library's back, as a renamed fn or a changed
/// parameter list would leave it.
pub async fn tamper(db: &TestDb, id: JobId, column: &str, value: &str) {
    let sql = format!("UPDATE jobs_job SET {column} = $1 WHERE id = $2");
    match db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            sqlx::query(&sql)
                .bind(value)
                .bind(id.to_string())
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            let value_sql = if column == "payload" {
                format!("UPDATE jobs_job SET {column} = $1::jsonb WHERE id = $2")
            } else {
                sql.clone()
            };
            sqlx::query(&value_sql)
                .bind(value)
                .bind(id.as_uuid())
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

/// `$body` with `$pool` a fresh pool on the test's database (a `SqlitePool` or a
/// `PgPool`, whichever its backend needs), closed after.
macro_rules! with_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db.backend {
            Backend::Sqlite => {
                let $pool = sqlx::SqlitePool::connect(&$db.url).await.unwrap();
                let out = $body;
                $pool.close().await;
                out
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                let $pool = sqlx::PgPool::connect(&$db.url).await.unwrap();
                let out = $body;
                $pool.close().await;
                out
            }
        }
    };
}

/// Runs `sql` (one statement, its `$1`, `$2`, … bound to `texts` in order) on the
/// test's database behind the library's back, as another build or an operator would.
pub async fn execute(db: &TestDb, sql: &str, texts: &[&str]) {
    with_pool!(db, |pool| {
        let mut query = sqlx::query(sql);
        for text in texts {
            query = query.bind(*text);
        }
        query.execute(&pool).await.unwrap();
    });
}

/// Reads one count (`sql`, its `$1`, `$2`, … bound to `texts` in order) from the test's
/// database behind the library's back.
pub async fn count(db: &TestDb, sql: &str, texts: &[&str]) -> i64 {
    with_pool!(db, |pool| {
        let mut query = sqlx::query_scalar(sql);
        for text in texts {
            query = query.bind(*text);
        }
        query.fetch_one(&pool).await.unwrap()
    })
}

/// A fixed start for manual clocks: tests read the same dates every run.
pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap()
}

/// `ids` by how they stand: (succeeded at their first attempt, waiting `Enqueued`
/// uncharged, any other), for the limits that hold jobs back without charging them.
pub async fn first_attempts(jobs: &Jobs, ids: &[JobId]) -> (usize, usize, usize) {
    let (mut succeeded, mut waiting, mut other) = (0, 0, 0);
    for &id in ids {
        let info = jobs.get(id).await.unwrap();
        match (info.state, info.attempt) {
            (JobState::Succeeded, 1) => succeeded += 1,
            (JobState::Enqueued, 0) => waiting += 1,
            _ => other += 1,
        }
    }
    (succeeded, waiting, other)
}

/// Waits until `count` of `ids` succeeded.
pub async fn until_succeeded(jobs: &Jobs, ids: &[JobId], count: usize) {
    wait_until(&format!("{count} jobs succeeded"), || async {
        first_attempts(jobs, ids).await.0 >= count
    })
    .await;
}

/// One running under a key of a [`Probe`], until dropped.
pub struct KeyGuard {
    probe: Probe,
    key: String,
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        self.probe.leave(&self.key);
    }
}

/// A fresh database on `backend`, a manual clock at [`start_time`], a client reading
/// it, and a probe for the jobs to report to.
pub async fn setup(backend: Backend) -> (TestDb, ManualClock, Jobs, Probe) {
    let db = TestDb::new(backend).await;
    let clock = ManualClock::new(start_time());
    let jobs = db.jobs(&clock).await;
    (db, clock, jobs, Probe::new())
}

/// Polls `condition` every 5 ms until it holds; panics with `what` after 20 s.
pub async fn wait_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the job satisfies `condition` and returns it.
pub async fn wait_for_job(
    jobs: &Jobs,
    id: JobId,
    what: &str,
    condition: impl Fn(&JobInfo) -> bool,
) -> JobInfo {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let info = jobs.get(id).await.expect("get job");
        if condition(&info) {
            return info;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until job {what}; it is {:?} at attempt {} with history {:#?}",
            info.state,
            info.attempt,
            info.history
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the job reaches `state`.
pub async fn wait_for_state(jobs: &Jobs, id: JobId, state: JobState) -> JobInfo {
    wait_for_job(jobs, id, &format!("is {state}"), |info| info.state == state).await
}

/// How many jobs are stored, in any state.
pub async fn stored_jobs(jobs: &Jobs) -> u64 {
    jobs.count_by_state()
        .await
        .unwrap()
        .iter()
        .map(|(_, count)| count)
        .sum()
}

/// A server on `jobs` with the suite's defaults: `probe` as its state and a 200 ms poll
/// interval (enqueues wake it at once; the poll only catches what a wake-up missed).
/// Tests add what they need, such as a worker count or a longer server timeout.
pub fn test_server(jobs: &Jobs, probe: &Probe) -> JobServerBuilder {
    JobServer::builder(jobs.clone())
        .state(probe.clone())
        .poll_interval(Duration::from_millis(200))
}

/// Leases that outlast the hours and days the tests move a manual clock by.
pub const LONG_LEASE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Starts a [`test_server`] on `jobs` whose leases outlast any move of the clock.
pub async fn long_lease_server(jobs: &Jobs, probe: &Probe) -> JobServer {
    test_server(jobs, probe)
        .server_timeout(LONG_LEASE)
        .start()
        .await
        .expect("server starts")
}

/// Starts a server with `workers` workers on `jobs`, waits until every job of `ids`
/// succeeded, stops it, and checks that each ran once and never more than `workers` at
/// once.
pub async fn run_all_once(jobs: &Jobs, probe: &Probe, ids: &[JobId], workers: usize) {
    let server = test_server(jobs, probe)
        .worker_count(workers)
        .start()
        .await
        .unwrap();
    let total = u64::try_from(ids.len()).unwrap();
    wait_until(&format!("{total} jobs succeed"), || async {
        let counts = jobs.count_by_state().await.unwrap();
        counts.contains(&(JobState::Succeeded, total))
    })
    .await;
    server.shutdown().await;
    let runs = probe.all_runs();
    assert_eq!(runs.len(), ids.len());
    for id in ids {
        assert_eq!(
            runs.get(id),
            Some(&1),
            "job {id} ran {:?} times",
            runs.get(id)
        );
    }
    let most = probe.max_running();
    assert!(most as usize <= workers, "{most} ran at once");
}

/// Shared with jobs through `State<Probe>`: counts runs and tracks concurrency.
#[derive(Clone)]
pub struct Probe {
    inner: Arc<Mutex<ProbeInner>>,
    /// Jobs that wait on the gate block until a test opens it.
    pub gate: Arc<tokio::sync::Semaphore>,
}

#[derive(Default)]
struct ProbeInner {
    runs: HashMap<JobId, u32>,
    running: u32,
    max_running: u32,
    seen: Vec<String>,
    /// Per key: running now, and the most at once.
    counters: HashMap<String, (u32, u32)>,
}

impl Probe {
    pub fn new() -> Self {
        Self {
            inner: Arc::default(),
            gate: Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }

    /// Records that job `id` started; returns a guard that records its end.
    pub fn start(&self, id: JobId) -> RunGuard {
        let mut inner = self.inner.lock().unwrap();
        *inner.runs.entry(id).or_default() += 1;
        inner.running += 1;
        inner.max_running = inner.max_running.max(inner.running);
        RunGuard {
            probe: self.clone(),
        }
    }

    /// Counts one more running under `key`.
    pub fn enter(&self, key: &str) {
        let mut inner = self.inner.lock().unwrap();
        let (now, max) = inner.counters.entry(key.to_owned()).or_default();
        *now += 1;
        *max = (*max).max(*now);
    }

    /// Counts one more running under `key` until the guard drops: also when the
    /// attempt is stopped where it waits (a lost lease under a loaded machine), which
    /// would skip a `leave` after the wait.
    pub fn inside(&self, key: &str) -> KeyGuard {
        self.enter(key);
        KeyGuard {
            probe: self.clone(),
            key: key.to_owned(),
        }
    }

    /// Counts one fewer running under `key`.
    pub fn leave(&self, key: &str) {
        if let Some((now, _)) = self.inner.lock().unwrap().counters.get_mut(key) {
            *now -= 1;
        }
    }

    pub fn running_in(&self, key: &str) -> u32 {
        self.inner
            .lock()
            .unwrap()
            .counters
            .get(key)
            .map_or(0, |(now, _)| *now)
    }

    pub fn max_of(&self, key: &str) -> u32 {
        self.inner
            .lock()
            .unwrap()
            .counters
            .get(key)
            .map_or(0, |(_, max)| *max)
    }

    pub fn note(&self, text: impl Into<String>) {
        self.inner.lock().unwrap().seen.push(text.into());
    }

    pub fn notes(&self) -> Vec<String> {
        self.inner.lock().unwrap().seen.clone()
    }

    pub fn runs(&self, id: JobId) -> u32 {
        self.inner
            .lock()
            .unwrap()
            .runs
            .get(&id)
            .copied()
            .unwrap_or(0)
    }

    pub fn all_runs(&self) -> HashMap<JobId, u32> {
        self.inner.lock().unwrap().runs.clone()
    }

    pub fn max_running(&self) -> u32 {
        self.inner.lock().unwrap().max_running
    }

    pub fn running(&self) -> u32 {
        self.inner.lock().unwrap().running
    }
}

pub struct RunGuard {
    probe: Probe,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.probe.inner.lock().unwrap().running -= 1;
    }
}
