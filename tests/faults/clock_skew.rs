//! Two servers whose clocks differ by 60 s share one PostgreSQL database for a minute
//! of 10 s jobs (eight more every ten seconds, so that neither runs out of workers):
//! never two executions of a job at once, every job `Succeeded`.

use std::collections::HashMap;
use std::time::Duration;

use jobs::Jobs;
use tokio::time::Instant;

use crate::node::Node;
use crate::support::fault::{self, ExecutionLog};
use crate::support::{Backend, TestDb};
use crate::{Work, assert_all_ended, assert_no_overlaps};

const WORKERS: usize = 16;
/// Six waves of eight: a minute of work.
const JOBS: u32 = 48;
const WAVE: u32 = 8;
const JOB_LENGTH: Duration = Duration::from_secs(10);
const SERVER_TIMEOUT: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_whose_clocks_differ_by_a_minute() {
    let _serial = fault::serial().await;
    let started = Instant::now();
    let db = TestDb::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let log = ExecutionLog::open(dir.path().join("executions")).unwrap();
    let jobs = Jobs::connect(&db.url).await.unwrap();
    let on_time = Node::new(WORKERS, SERVER_TIMEOUT).spawn(&db.url, &log);
    let ahead = Node {
        clock_offset: 60,
        ..Node::new(WORKERS, SERVER_TIMEOUT)
    }
    .spawn(&db.url, &log);

    // A wave of jobs every job length; fails as soon as two executions overlap, rather
    // than after the minute.
    let deadline = Instant::now() + Duration::from_secs(110);
    let mut enqueued = 0;
    let mut next_wave = Instant::now();
    loop {
        if enqueued < JOBS && Instant::now() >= next_wave {
            jobs.enqueue_many((enqueued..enqueued + WAVE).map(|n| Work {
                n,
                millis: u64::try_from(JOB_LENGTH.as_millis()).unwrap(),
            }))
            .await
            .unwrap();
            enqueued += WAVE;
            next_wave += JOB_LENGTH;
        }
        assert_no_overlaps(&log.runs(), &HashMap::new());
        if enqueued == JOBS {
            let counts = jobs.count_by_state().await.unwrap();
            if counts == [(jobs::JobState::Succeeded, u64::from(JOBS))] {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not every job succeeded in time: {counts:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let pids = [on_time.pid(), ahead.pid()];
    on_time.stop(Duration::from_secs(20)).await;
    ahead.stop(Duration::from_secs(20)).await;

    let runs = log.runs();
    assert_all_ended(&runs);
    assert_no_overlaps(&runs, &HashMap::new());
    let per_node = pids.map(|pid| runs.iter().filter(|run| run.pid == pid).count());
    println!(
        "{JOBS} jobs of {JOB_LENGTH:?} on two servers 60 s apart in {:.1?}: {} executions, \
         {per_node:?} on the node on time and the one ahead",
        started.elapsed(),
        runs.len(),
    );
}
