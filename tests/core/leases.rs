//! Leases under faults, on each backend: the heartbeat runs apart from the jobs (a
//! worker runtime blocked by user code keeps its leases), a server that cannot renew
//! its leases stops its jobs before anyone may rescue them and resumes when it can,
//! every storage call of the server is bounded, shutdown never puts back a job whose
//! result waits to be written, a job's timeout cancels its context, and settings out
//! of range are refused at start.
//!
//! Where the server measures time on the monotonic clock (the self-fence, blocked
//! runtimes), the tests use real time with a short server timeout.

use std::time::{Duration, Instant};

use crate::support::{Backend, Probe, TestDb, setup, test_server, wait_for_state, wait_until};
use jobs::prelude::*;
use jobs::{Error, JobServer, Jobs};
use tokio::sync::oneshot;

backend_tests!(
    a_timeout_cancels_the_jobs_context,
    a_server_that_cannot_renew_its_leases_stops_its_jobs_and_resumes,
    a_blocked_worker_runtime_keeps_its_leases,
    shutdown_never_puts_back_a_result_waiting_to_be_written,
    settings_out_of_range_are_refused_at_start_with_the_key_named,
);

#[job(timeout = "200ms", retries = 0)]
async fn outlives_its_timeout(State(probe): State<Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
    // A helper task of the job's own, which stops when the job is cancelled.
    let helper = ctx.clone();
    tokio::spawn(async move {
        helper.cancelled().await;
        probe.note("helper stopped");
    });
    std::future::pending::<()>().await;
}

#[job]
async fn runs_until_stopped(State(probe): State<Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
    std::future::pending::<()>().await;
}

#[job]
async fn gated(State(probe): State<Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
    probe.gate.acquire().await.expect("gate open").forget();
}

#[job]
async fn quick(State(probe): State<Probe>, ctx: JobContext) {
    let _run = probe.start(ctx.id());
}

/// Blocks the thread it runs on, as careless user code does.
#[job]
async fn blocks_its_thread(State(probe): State<Probe>, ctx: JobContext, millis: u64) {
    let _run = probe.start(ctx.id());
    std::thread::sleep(Duration::from_millis(millis));
}

/// What [`block`] holds locked.
enum Lock<'a> {
    /// The server's row (PostgreSQL); the whole database on SQLite.
    Server(&'a str),
    /// A job's row (PostgreSQL); the whole database on SQLite.
    Job(JobId),
}

/// Another connection holding a lock, as a stuck transaction of another process does:
/// SQLite's write lock, or a row lock on PostgreSQL. Released by [`Blocker::release`].
struct Blocker {
    release: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

impl Blocker {
    async fn release(self) {
        let _ = self.release.send(());
        self.done.await.unwrap();
    }
}

async fn block(db: &TestDb, lock: Lock<'_>) -> Blocker {
    let (locked, is_locked) = oneshot::channel();
    let (release, released) = oneshot::channel::<()>();
    let done = match db.backend {
        Backend::Sqlite => {
            let url = db.url.clone();
            tokio::spawn(async move {
                use sqlx::Connection;
                let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                locked.send(()).unwrap();
                let _ = released.await;
                sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
            })
        }
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            let url = db.url.clone();
            let (table, id) = match lock {
                Lock::Server(id) => ("jobs_server", id.to_owned()),
                Lock::Job(id) => ("jobs_job", id.to_string()),
            };
            tokio::spawn(async move {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
                let select = if table == "jobs_job" {
                    "SELECT 1 FROM jobs_job WHERE id = $1::uuid FOR UPDATE"
                } else {
                    "SELECT 1 FROM jobs_server WHERE id = $1 FOR UPDATE"
                };
                sqlx::query(select)
                    .bind(id)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
                locked.send(()).unwrap();
                let _ = released.await;
                sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
            })
        }
    };
    #[cfg(not(feature = "postgres"))]
    let _ = lock;
    is_locked.await.expect("the lock is taken");
    Blocker { release, done }
}

async fn a_timeout_cancels_the_jobs_context(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let server = test_server(&jobs, &probe)
        .server_timeout(Duration::from_secs(24 * 3600))
        .start()
        .await
        .unwrap();
    let id = jobs.enqueue(OutlivesItsTimeout {}).await.unwrap();
    let info = wait_for_state(&jobs, id, JobState::Failed).await;
    assert_eq!(
        info.errors().next().unwrap().message,
        "timed out after 200ms",
        "the timeout is still recorded as the attempt's failure"
    );
    wait_until("the job's helper task sees the cancellation", || async {
        probe.notes().contains(&"helper stopped".to_owned())
    })
    .await;
    server.shutdown().await;
}

async fn a_server_that_cannot_renew_its_leases_stops_its_jobs_and_resumes(backend: Backend) {
    let (db, _clock, jobs, probe) = setup(backend).await;
    let server_timeout = Duration::from_secs(2);
    let server = JobServer::builder(jobs.clone())
        .state(probe.clone())
        .poll_interval(Duration::from_millis(100))
        .server_timeout(server_timeout)
        .storage_timeout(Duration::from_millis(500))
        .start()
        .await
        .unwrap();
    let metrics = server.metrics();
    jobs.enqueue(RunsUntilStopped {}).await.unwrap();
    wait_until("the job runs", || async { probe.running() == 1 }).await;
    assert!(metrics.healthy());

    // The server's renewals now fail (its row, or the database, is locked elsewhere).
    let blocker = block(&db, Lock::Server(server.id())).await;
    let blocked = Instant::now();
    wait_until("the server stops its job", || async {
        probe.running() == 0
    })
    .await;
    let stopped_after = blocked.elapsed();
    assert!(
        stopped_after < server_timeout,
        "stopped {stopped_after:?} after the last renewal: before its lease could run out"
    );
    assert!(!metrics.healthy());
    assert!(!metrics.leases_renewed());
    assert_eq!(metrics.fences(), 1, "the fence is counted");

    // The database answers again: the server renews and runs jobs again.
    blocker.release().await;
    wait_until("the server is healthy again", || async {
        metrics.healthy()
    })
    .await;
    let next = jobs.enqueue(Quick {}).await.unwrap();
    wait_for_state(&jobs, next, JobState::Succeeded).await;
    assert_eq!(metrics.restarts(), 0, "no loop failed");
    assert_eq!(metrics.fences(), 1, "one fence, lifted");
    server.shutdown().await;
}

async fn a_blocked_worker_runtime_keeps_its_leases(backend: Backend) {
    let db = TestDb::new(backend).await;
    let probe = Probe::new();
    let server_timeout = Duration::from_secs(2);
    // The server whose runtime the job blocks runs on a runtime of one thread of its
    // own, on the system clock, like a process whose only worker thread is stuck.
    let (started, is_started) = oneshot::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let node = {
        let url = db.url.clone();
        let probe = probe.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let jobs = Jobs::connect(&url).await.unwrap();
                let id = jobs
                    .enqueue(BlocksItsThread { millis: 3000 })
                    .await
                    .unwrap();
                let server = JobServer::builder(jobs.clone())
                    .state(probe)
                    .worker_count(1)
                    .poll_interval(Duration::from_millis(100))
                    .server_timeout(server_timeout)
                    .start()
                    .await
                    .unwrap();
                started.send((id, server.id().to_owned())).unwrap();
                let _ = stopped.await;
                server.shutdown().await;
            });
        })
    };
    let (id, blocked_server) = is_started.await.unwrap();
    let jobs = Jobs::connect(&db.url).await.unwrap();
    wait_until("the job blocks the other server's runtime", || async {
        probe.running() == 1
    })
    .await;
    let info = jobs.get(id).await.unwrap();
    assert_eq!(info.owner.as_deref(), Some(blocked_server.as_str()));

    // Another server, quick to rescue jobs whose leases ran out.
    let rescuer = JobServer::builder(jobs.clone())
        .state(probe.clone())
        .poll_interval(Duration::from_millis(100))
        .server_timeout(server_timeout)
        .start()
        .await
        .unwrap();
    let info = wait_for_state(&jobs, id, JobState::Succeeded).await;
    assert_eq!(
        info.errors().count(),
        0,
        "never rescued while its server lived: {:#?}",
        info.history
    );
    assert_eq!(info.attempt, 1);
    assert_eq!(probe.runs(id), 1);
    rescuer.shutdown().await;
    stop.send(()).unwrap();
    tokio::task::spawn_blocking(move || node.join().unwrap())
        .await
        .unwrap();
}

async fn shutdown_never_puts_back_a_result_waiting_to_be_written(backend: Backend) {
    let (db, _clock, jobs, probe) = setup(backend).await;
    let server = test_server(&jobs, &probe)
        .server_timeout(Duration::from_secs(60))
        .storage_timeout(Duration::from_millis(300))
        .shutdown_grace(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let id = jobs.enqueue(Gated {}).await.unwrap();
    wait_until("the job runs", || async { probe.running() == 1 }).await;
    // The job's result cannot be written (its row, or the database, is locked
    // elsewhere) when it succeeds and when the server shuts down.
    let blocker = block(&db, Lock::Job(id)).await;
    probe.gate.add_permits(1);
    wait_until("the job ends", || async { probe.running() == 0 }).await;
    let began = Instant::now();
    tokio::time::timeout(Duration::from_secs(15), server.shutdown())
        .await
        .expect("shutdown never waits on a stuck database beyond its bounds");
    let took = began.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "every storage call of the shutdown is bounded: took {took:?}"
    );
    let info = jobs.get(id).await.unwrap();
    assert_eq!(
        info.state,
        JobState::Processing,
        "not put back for another run: its result waits to be written {:#?}",
        info.history
    );

    // Once the database answers, the result is written (or, had the process died, the
    // job would run again after its lease ran out); it never ran twice.
    blocker.release().await;
    let info = wait_for_state(&jobs, id, JobState::Succeeded).await;
    assert_eq!(info.attempt, 1);
    assert_eq!(probe.runs(id), 1);
}

async fn settings_out_of_range_are_refused_at_start_with_the_key_named(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let ages = Duration::from_secs(300_000 * 365 * 24 * 3600);
    let refused = [
        (
            "delete_succeeded_after",
            test_server(&jobs, &probe).delete_succeeded_after(ages),
        ),
        (
            "delete_deleted_after",
            test_server(&jobs, &probe).delete_deleted_after(ages),
        ),
        (
            "shutdown_grace",
            test_server(&jobs, &probe).shutdown_grace(ages),
        ),
        (
            "server_timeout",
            test_server(&jobs, &probe).server_timeout(Duration::from_millis(150)),
        ),
        (
            "storage_timeout",
            test_server(&jobs, &probe).storage_timeout(Duration::ZERO),
        ),
    ];
    for (key, builder) in refused {
        match builder.start().await {
            Err(Error::Config(message)) => {
                assert!(message.starts_with(key), "{key}: {message}");
            }
            Err(other) => panic!("{key}: {other}"),
            Ok(server) => {
                server.shutdown().await;
                panic!("{key}: a server started with it out of range");
            }
        }
    }
}
