use jobs::prelude::*;

#[recurring(cron = "0 8 * * *", zone = "Europe/Brussels")]
async fn morning_email_summary() {}

#[job(display = "Poll inbox")]
#[recurring(every = "15m")]
async fn poll_inbox() {}

fn main() {
    let _ = (MorningEmailSummary, PollInbox);
}
