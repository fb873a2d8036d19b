use jobs::prelude::*;

#[recurring(id = "poll", every = "15m")]
#[recurring(id = "poll-again", every = "1h")]
async fn two_schedules() {}

#[job]
#[recurring(id = "report", cron = "0 8 * * *")]
#[job(retries = 3)]
async fn two_jobs() {}

#[job(crate = "jobs")]
#[recurring(id = "cleanup", cron = "0 3 * * *", crate = "jobs")]
async fn two_crates() {}

fn main() {
    let _ = (TwoSchedules, TwoJobs, TwoCrates);
}
