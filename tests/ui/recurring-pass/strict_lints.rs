//! A crate with strict lints: what `#[recurring]` generates adds no warning to it.
#![deny(warnings, missing_docs, unreachable_pub, missing_debug_implementations)]
#![forbid(unsafe_code)]

use jobs::prelude::*;

/// State shared with the jobs.
#[derive(Debug, Clone)]
pub struct App;

/// Mails the morning summary.
#[recurring(
    id = "morning-email-summary",
    cron = "0 8 * * *",
    zone = "Europe/Brussels"
)]
#[job(display = "Morning summary", retries = 3)]
pub async fn morning_email_summary(State(_app): State<App>, ctx: JobContext) -> anyhow::Result<()> {
    let _ = ctx.attempt();
    Ok(())
}

/// Polls the inbox.
#[job(name = "inbox.poll")]
#[recurring(
    id = "poll-inbox",
    every = "15m",
    missed = "catch_up(4)",
    allow_overlap = false
)]
pub async fn poll_inbox() {}

#[recurring(id = "cleanup", cron = "0 3 * * *", missed = "skip")]
async fn cleanup(_ctx: JobContext) {}

fn main() {
    let _ = (MorningEmailSummary, PollInbox, Cleanup);
}
