//! Flow control across servers: a queue's global limit holds for every server on the
//! database together, and a server that serves chosen queues claims nothing else, its
//! queue limits and the pauses applying within them.

use crate::support::{Backend, Probe, TestDb, setup, test_server, wait_for_state, wait_until};
use jobs::prelude::*;
use jobs::{JobServer, Jobs, ManualClock};

backend_tests!(
    a_global_queue_limit_holds_across_two_servers_claiming_at_once,
    a_server_serving_chosen_queues_never_runs_another_queues_job,
);

/// Runs until the probe's gate lets it through, counted under its queue meanwhile.
#[job(queue = "pdf", display = "Render {n}")]
async fn render(State(probe): State<Probe>, n: u32) {
    let _ = n;
    let _inside = probe.inside("pdf");
    probe.gate.acquire().await.expect("gate open").forget();
}

#[job(queue = "llm", display = "Ask {n}")]
async fn ask_model(State(probe): State<Probe>, n: u32) {
    probe.note(format!("llm {n}"));
}

#[job(queue = "pdf", display = "Print {n}")]
async fn print_page(State(probe): State<Probe>, n: u32) {
    probe.note(format!("pdf {n}"));
}

#[job(display = "Mail {n}")]
async fn send_mail(State(probe): State<Probe>, n: u32) {
    probe.note(format!("default {n}"));
}

/// A server of its own pool on the test's database, as another replica has.
async fn replica(db: &TestDb, clock: &ManualClock, probe: &Probe, limit: usize) -> JobServer {
    let jobs = db.jobs(clock).await;
    test_server(&jobs, probe)
        .worker_count(8)
        .global_queue_limit("pdf", limit)
        .start()
        .await
        .expect("server starts")
}

async fn running_in_database(jobs: &Jobs) -> u64 {
    jobs.count_by_state()
        .await
        .unwrap()
        .iter()
        .find(|(state, _)| *state == JobState::Processing)
        .map_or(0, |(_, count)| *count)
}

async fn a_global_queue_limit_holds_across_two_servers_claiming_at_once(backend: Backend) {
    const LIMIT: usize = 3;
    const JOBS: u32 = 24;
    let (db, clock, jobs, probe) = setup(backend).await;
    jobs.enqueue_many((0..JOBS).map(|n| Render { n }))
        .await
        .unwrap();
    // Sixteen free workers between them and a backlog of 24: without the limit both
    // would take eight at once.
    let (one, two) = tokio::join!(
        replica(&db, &clock, &probe, LIMIT),
        replica(&db, &clock, &probe, LIMIT)
    );
    let mut released = 0;
    loop {
        wait_until("the limit is taken, or every job has started", || async {
            let running = probe.running_in("pdf") as usize;
            running == LIMIT || running == usize::try_from(JOBS).unwrap() - released
        })
        .await;
        let in_database = running_in_database(&jobs).await;
        assert!(
            in_database <= LIMIT as u64,
            "{in_database} processing at once"
        );
        if released == usize::try_from(JOBS).unwrap() {
            break;
        }
        // One ends; both servers race to fill its place (each is woken by the other's
        // completion at the latest within a poll interval).
        probe.gate.add_permits(1);
        released += 1;
        wait_until("the released job ends", || async {
            probe.running_in("pdf") as usize <= LIMIT.min(usize::try_from(JOBS).unwrap() - released)
        })
        .await;
    }
    wait_until("every job succeeded", || async {
        jobs.count_by_state().await.unwrap() == [(JobState::Succeeded, u64::from(JOBS))]
    })
    .await;
    assert_eq!(
        probe.max_of("pdf") as usize,
        LIMIT,
        "the most running at once"
    );
    one.shutdown().await;
    two.shutdown().await;
}

async fn a_server_serving_chosen_queues_never_runs_another_queues_job(backend: Backend) {
    let (db, clock, jobs, probe) = setup(backend).await;
    // It serves `llm` only, though it has a limit for `pdf`.
    let server = test_server(&jobs, &probe)
        .queues(["llm"])
        .global_queue_limit("pdf", 2)
        .queue_limit("llm", 4)
        .start()
        .await
        .unwrap();
    let mail = jobs.enqueue(SendMail { n: 1 }).await.unwrap();
    let page = jobs.enqueue(PrintPage { n: 1 }).await.unwrap();
    let first = jobs.enqueue(AskModel { n: 1 }).await.unwrap();
    wait_for_state(&jobs, first, JobState::Succeeded).await;
    // A pause of its queue holds: the next waits until the resume. A claim already
    // under way when the pause lands may still take the queue's jobs, so the next is
    // enqueued once the server has the pause in its view.
    jobs.pause_queue("llm", "ops").await.unwrap();
    crate::support::wait_until("the server saw the pause", || async {
        server.paused_queues().contains(&"llm".to_owned())
    })
    .await;
    let second = jobs.enqueue(AskModel { n: 2 }).await.unwrap();
    let others = Probe::new();
    let other = test_server(&db.jobs(&clock).await, &others)
        .queues(["default", "pdf"])
        .start()
        .await
        .unwrap();
    wait_for_state(&jobs, mail, JobState::Succeeded).await;
    wait_for_state(&jobs, page, JobState::Succeeded).await;
    assert_eq!(jobs.get(second).await.unwrap().state, JobState::Enqueued);
    jobs.resume_queue("llm").await.unwrap();
    wait_for_state(&jobs, second, JobState::Succeeded).await;
    other.shutdown().await;
    server.shutdown().await;
    assert_eq!(probe.notes(), ["llm 1", "llm 2"]);
    let mut served = others.notes();
    served.sort();
    assert_eq!(served, ["default 1", "pdf 1"]);
}
