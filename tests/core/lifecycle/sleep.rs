//! Durable sleep: a job that sleeps holds no worker, survives a restart of every
//! server, and goes on after the sleep where it stopped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::support::{
    Backend, LONG_LEASE, Probe, setup, test_server, wait_for_job, wait_for_state, wait_until,
};
use jobs::prelude::*;
use jobs::{Job, JobQuery, JobServer, Jobs, ManualClock};

backend_tests!(
    a_sleeping_job_holds_no_worker_and_resumes_after_its_time,
    a_sleep_survives_a_restart_of_every_server,
    ten_thousand_sleeping_jobs_hold_no_task_and_resume_on_time_after_a_restart,
);

/// Sends a follow-up three days after the first message, unless answered.
#[job(retries = 2)]
async fn follow_up(State(probe): State<Probe>, ctx: JobContext, user: u32) -> anyhow::Result<()> {
    let sent: String = ctx
        .step("first message", || async {
            probe.note(format!("first message to {user}"));
            Ok::<_, anyhow::Error>(format!("message-{user}"))
        })
        .await?;
    ctx.sleep("three days", Duration::from_secs(3 * 86_400))
        .await?;
    probe.note(format!("follow-up on {sent} at attempt {}", ctx.attempt()));
    Ok(())
}

async fn server(jobs: &Jobs, probe: &Probe, workers: usize) -> JobServer {
    test_server(jobs, probe)
        .worker_count(workers)
        .server_timeout(LONG_LEASE)
        .start()
        .await
        .unwrap()
}

async fn a_sleeping_job_holds_no_worker_and_resumes_after_its_time(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    // One worker: the other job could not run while the first held it.
    let server = server(&jobs, &probe, 1).await;
    let id = jobs.enqueue(FollowUp { user: 7 }).await.unwrap();
    let sleeping = wait_for_job(&jobs, id, "sleeps", |info| {
        info.state == JobState::Scheduled
    })
    .await;
    assert_eq!(
        sleeping.run_at,
        crate::support::start_time() + chrono::Duration::days(3)
    );
    assert_eq!(sleeping.attempt, 0, "a sleep is not an attempt");
    let note = sleeping.history.last().unwrap().error.as_ref().unwrap();
    assert!(
        note.message.contains("sleeps until") && note.message.contains("three days"),
        "{}",
        note.message
    );
    let other = jobs.enqueue(FollowUp { user: 8 }).await.unwrap();
    wait_for_job(&jobs, other, "sleeps too", |info| {
        info.state == JobState::Scheduled
    })
    .await;

    clock.advance(Duration::from_secs(3 * 86_400));
    let done = wait_for_state(&jobs, id, JobState::Succeeded).await;
    wait_for_state(&jobs, other, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(
        done.attempt, 1,
        "the run after the sleep is the first attempt"
    );
    let mut notes = probe.notes();
    notes.sort();
    assert_eq!(
        notes,
        [
            "first message to 7",
            "first message to 8",
            "follow-up on message-7 at attempt 1",
            "follow-up on message-8 at attempt 1",
        ],
        "the step before the sleep ran once"
    );
}

async fn a_sleep_survives_a_restart_of_every_server(backend: Backend) {
    let (_db, clock, jobs, probe) = setup(backend).await;
    let first = server(&jobs, &probe, 4).await;
    let id = jobs.enqueue(FollowUp { user: 9 }).await.unwrap();
    wait_for_job(&jobs, id, "sleeps", |info| {
        info.state == JobState::Scheduled
    })
    .await;
    first.shutdown().await;

    clock.advance(Duration::from_secs(2 * 86_400));
    let second = server(&jobs, &probe, 4).await;
    // Run early by an operator's requeue, it goes back to sleep until its own time,
    // without sending the first message again.
    assert!(jobs.requeue(id).await.unwrap());
    let until = crate::support::start_time() + chrono::Duration::days(3);
    let again = wait_for_job(&jobs, id, "sleeps again", |info| {
        info.state == JobState::Scheduled && info.history.len() >= 6
    })
    .await;
    assert_eq!(again.run_at, until);
    clock.advance(Duration::from_secs(86_400));
    wait_for_state(&jobs, id, JobState::Succeeded).await;
    second.shutdown().await;
    assert_eq!(
        probe.notes(),
        ["first message to 9", "follow-up on message-9 at attempt 1"]
    );
}

/// When each job woke, on the clock, as the jobs record it (they also return it).
#[derive(Clone, Default)]
struct Wakes(Arc<Mutex<Vec<Wake>>>);

/// A job and the time on the clock when it woke.
type Wake = (JobId, DateTime<Utc>);

impl Wakes {
    /// Each job's wake, checking that none woke twice (failing with the history of
    /// those that did: which servers claimed and put them back, and when).
    async fn once_each(&self, jobs: &Jobs) -> HashMap<JobId, DateTime<Utc>> {
        let wakes = self.0.lock().unwrap().clone();
        let mut each: HashMap<JobId, Vec<DateTime<Utc>>> = HashMap::new();
        for (id, at) in &wakes {
            each.entry(*id).or_default().push(*at);
        }
        let mut twice = Vec::new();
        for (id, times) in each.iter().filter(|(_, times)| times.len() > 1) {
            let history = jobs.get(*id).await.unwrap().history;
            twice.push(format!("{id} woke at {times:?}; history {history:#?}"));
        }
        assert!(twice.is_empty(), "jobs woke twice:\n{}", twice.join("\n"));
        each.into_iter().map(|(id, times)| (id, times[0])).collect()
    }
}

const A_DAY: Duration = Duration::from_secs(86_400);

/// Sleeps a day, then records and returns the time on the clock when it woke.
#[job(retries = 0)]
async fn nap(State(wakes): State<Wakes>, ctx: JobContext) -> anyhow::Result<DateTime<Utc>> {
    ctx.sleep("a day", A_DAY).await?;
    let now = ctx.now();
    wakes.0.lock().unwrap().push((ctx.id(), now));
    Ok(now)
}

/// How many jobs sleep: 10,000, or `JOBS_TEST_SLEEPERS`.
fn sleepers() -> u32 {
    std::env::var("JOBS_TEST_SLEEPERS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(10_000)
}

/// The resident memory of this process, in KiB (`VmRSS` of `/proc/self/status`).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Two servers of 32 workers, as two replicas of a service would be.
async fn nap_servers(jobs: &Jobs, probe: &Probe, wakes: &Wakes) -> Vec<JobServer> {
    let mut servers = Vec::new();
    for _ in 0..2 {
        let server = test_server(jobs, probe)
            .state(wakes.clone())
            .worker_count(32)
            .server_timeout(LONG_LEASE)
            .start()
            .await
            .unwrap();
        servers.push(server);
    }
    servers
}

/// Waits until `count` jobs are in `state` (jobs of other names counted too). Fails when
/// that count stands still for [`STALL`] of real time: how fast jobs move depends on the
/// machine and what else runs on it (speed is measured, not asserted here), but a job
/// stuck on its way shows as a count that stops growing.
async fn wait_for_count(jobs: &Jobs, state: JobState, count: u64) {
    let mut reached = 0;
    let mut last_move = Instant::now();
    loop {
        let counts = jobs.count_by_state().await.unwrap();
        let now_in = counts
            .iter()
            .find_map(|&(stored, n)| (stored == state).then_some(n))
            .unwrap_or(0);
        if now_in >= count {
            return;
        }
        if now_in > reached {
            reached = now_in;
            last_move = Instant::now();
        }
        assert!(
            last_move.elapsed() < STALL,
            "{now_in} of {count} jobs {state}, none more for {STALL:?}: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How long a count of jobs may stand still before the test fails.
const STALL: Duration = Duration::from_secs(60);

/// Those of `states` that some nap is in.
async fn naps_in(jobs: &Jobs, states: &[JobState]) -> Vec<JobState> {
    let mut found = Vec::new();
    for &state in states {
        let query = JobQuery::state(state).name(Nap::DESCRIPTOR.name()).limit(1);
        if !jobs.list(query).await.unwrap().items.is_empty() {
            found.push(state);
        }
    }
    found
}

/// The time each sleeping job is stored to wake at, read a page at a time.
async fn wake_times(jobs: &Jobs) -> HashMap<JobId, DateTime<Utc>> {
    let mut times = HashMap::new();
    let mut query = JobQuery::state(JobState::Scheduled).limit(1000);
    loop {
        let page = jobs.list(query.clone()).await.unwrap();
        times.extend(page.items.iter().map(|job| (job.id, job.run_at)));
        match page.next {
            Some(next) => query = query.after(next),
            None => return times,
        }
    }
}

/// Moves the clock along with real time until dropped, as time goes on after the
/// jump of a day: a job's lag behind its wake time is then the real one.
struct RunningClock(tokio::task::JoinHandle<()>);

impl RunningClock {
    fn start(clock: &ManualClock) -> Self {
        let clock = clock.clone();
        Self(tokio::spawn(async move {
            let mut last = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                let now = Instant::now();
                clock.advance(now - last);
                last = now;
            }
        }))
    }
}

impl Drop for RunningClock {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn ten_thousand_sleeping_jobs_hold_no_task_and_resume_on_time_after_a_restart(
    backend: Backend,
) {
    let count = sleepers();
    let total = u64::from(count);
    let (db, clock, jobs, probe) = setup(backend).await;
    let wakes = Wakes::default();
    // The whole test process's memory: other tests running beside this one count too.
    let rss_start = rss_kib();
    let started = Instant::now();
    let servers = nap_servers(&jobs, &probe, &wakes).await;
    let mut ids = Vec::new();
    for first in (0..count).step_by(1000) {
        let chunk = (first..count.min(first + 1000)).map(|_| Nap {});
        ids.extend(jobs.enqueue_many(chunk).await.unwrap());
    }
    wait_for_count(&jobs, JobState::Scheduled, total).await;
    let to_sleep = started.elapsed();
    for server in &servers {
        wait_until("the server's job tasks ended", || async {
            server.running() == 0
        })
        .await;
    }
    let rss_sleeping = rss_kib();
    let due = wake_times(&jobs).await;
    assert_eq!(due.len(), ids.len());
    let wake_at = crate::support::start_time() + chrono::Duration::days(1);
    assert!(due.values().all(|&at| at == wake_at), "each sleeps a day");

    for server in servers {
        server.shutdown().await;
    }
    drop(jobs);
    let jobs = db.jobs(&clock).await;
    let servers = nap_servers(&jobs, &probe, &wakes).await;
    let early = [
        JobState::Enqueued,
        JobState::Processing,
        JobState::Succeeded,
    ];
    assert_eq!(naps_in(&jobs, &early).await, [], "nothing ran early");

    clock.advance(A_DAY);
    let resumed = Instant::now();
    let running_clock = RunningClock::start(&clock);
    wait_for_count(&jobs, JobState::Succeeded, total).await;
    let to_resume = resumed.elapsed();
    let unfinished = [
        JobState::Scheduled,
        JobState::Enqueued,
        JobState::Processing,
        JobState::Failed,
    ];
    assert_eq!(naps_in(&jobs, &unfinished).await, [], "every nap succeeded");
    drop(running_clock);
    let rss_done = rss_kib();
    for server in servers {
        server.shutdown().await;
    }

    let woke = wakes.once_each(&jobs).await;
    // Nothing failed, so no server found rows it owned but did not hold (a put-back
    // racing the release of jobs claimed ahead did, before that release held the
    // claim lock).
    let unheld = crate::support::count(
        &db,
        "SELECT count(*) FROM jobs_event WHERE message = $1",
        &["released: its server no longer held it"],
    )
    .await;
    assert_eq!(unheld, 0, "jobs put back as no longer held");
    assert_eq!(woke.len(), ids.len(), "each job woke");
    let mut latest = chrono::Duration::zero();
    for (id, at) in &woke {
        let late = *at - due[id];
        assert!(
            late >= chrono::Duration::zero(),
            "job {id} woke early, at {at}"
        );
        latest = latest.max(late);
    }
    // The clock runs with real time after the jump, so no job can be later by it than
    // the whole resume took. How long that is depends on the machine: it is printed.
    let resume = chrono::Duration::from_std(to_resume).unwrap();
    assert!(
        latest <= resume + chrono::Duration::seconds(1),
        "a job resumed {latest} after its time, while all resumed within {resume}"
    );
    for id in ids.iter().step_by(500) {
        let result = jobs.result::<Nap>(*id).await.unwrap();
        assert_eq!(result, Some(woke[id]), "the job stored when it woke");
    }
    println!(
        "{backend:?}: {count} jobs asleep in {to_sleep:.1?}, all resumed and succeeded \
         {to_resume:.1?} after the clock moved a day, the latest {:.1?} after its time; \
         VmRSS {rss_start} KiB at start, {rss_sleeping} KiB with all asleep, \
         {rss_done} KiB after",
        latest.to_std().unwrap()
    );
}
