//! The first look: on a database without a single job, the `agent` example enqueues a
//! small demo of its three scenarios, so the dashboard has something in motion before
//! anyone types a curl command. `DEMO=0` turns it off.

use std::time::Duration;

use jobs::Jobs;

use crate::documents::{self, DEMO_DOCUMENT};
use crate::reminders::SendReminder;

/// The environment variable that turns the demo off (`DEMO=0`).
const SWITCH: &str = "DEMO";

/// Enqueues the demo when the database holds no job at all (a first start) and
/// `DEMO` is not `0`: a reminder due in a minute, the analysis of the demo document
/// (its first summary fails and is retried; each step shows its progress), and a run of
/// the recurring morning summary now, next to its daily schedule. Returns whether it
/// enqueued anything.
pub(crate) async fn seed(jobs: &Jobs) -> anyhow::Result<bool> {
    if std::env::var(SWITCH).is_ok_and(|value| value.trim() == "0") {
        return Ok(false);
    }
    if !jobs.count_by_state().await?.is_empty() {
        return Ok(false);
    }
    jobs.enqueue(SendReminder {
        user_id: 7,
        text: "Review the Q3 deck".into(),
        // Nobody answers the demo: its follow-up comes two minutes after it.
        follow_up_after_secs: Some(120),
    })
    .after(Duration::from_secs(60))
    .await?;
    documents::analyze(jobs, DEMO_DOCUMENT).await?;
    jobs.recurring().trigger("morning-email-summary").await?;
    tracing::info!(
        "first start: enqueued a demo (a reminder in a minute, a document analysis whose \
         first model call fails and is retried, a run of the morning summary); \
         {SWITCH}=0 turns it off"
    );
    Ok(true)
}
