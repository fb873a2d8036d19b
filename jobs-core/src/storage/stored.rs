//! Values as they are stored: the caps on what a job may write, the stored forms of a
//! failure, a payload and a recurring job, and the states a requeue applies to.

use std::sync::LazyLock;

use sqlx::query::Query;
use sqlx::{Database, Encode, Type};

use crate::job::info::ErrorInfo;
use crate::recurring::{NewRecurring, disabled};
use crate::{Failure, JobState};

/// The history message of a job put back because its server no longer held it.
pub(crate) const UNHELD_MESSAGE: &str = "released: its server no longer held it";

/// The history message of a job that an enqueue of its unique key with `replace` gave
/// its time (`run_at`) and arguments.
pub(crate) fn replaced_message(run_at: chrono::DateTime<chrono::Utc>) -> String {
    format!("replaced by an enqueue of the same unique key: runs at {run_at}")
}

/// Whether a requeue may move a job in `state` to `Enqueued`: it is not running and not
/// waiting for a parent. A match, so that a new state has to be decided here.
pub(crate) fn requeueable(state: JobState) -> bool {
    match state {
        JobState::Scheduled
        | JobState::Enqueued
        | JobState::Succeeded
        | JobState::Failed
        | JobState::Deleted => true,
        JobState::Processing | JobState::Awaiting => false,
    }
}

/// The [`requeueable`] states as an SQL list, `('Scheduled', …)`, in [`JobState::ALL`]'s
/// order.
pub(crate) static REQUEUEABLE: LazyLock<String> = LazyLock::new(|| {
    let names: Vec<String> = JobState::ALL
        .into_iter()
        .filter(|state| requeueable(*state))
        .map(|state| format!("'{}'", state.as_str()))
        .collect();
    format!("({})", names.join(", "))
});

/// Longest log line stored; longer ones are cut.
pub(crate) const MAX_LOG_LINE_BYTES: usize = 4 * 1024;

/// Longest error message stored for one attempt; longer ones are cut.
pub(crate) const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// Most error sources stored for one attempt.
pub(crate) const MAX_SOURCES: usize = 32;

/// Longest backtrace stored for one attempt; a longer one is cut, saying so.
pub(crate) const MAX_BACKTRACE_BYTES: usize = 16 * 1024;

/// Cuts `text` to at most `max` bytes on a character boundary, saying so.
pub(crate) fn cap(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [cut: {} bytes in all]", &text[..end], text.len())
}

/// The failure as stored: message, sources and backtrace capped, sources as a JSON
/// array.
pub(crate) fn stored_failure(failure: &Failure) -> StoredFailure {
    let message = cap(failure.message(), MAX_MESSAGE_BYTES);
    let sources: Vec<String> = failure
        .sources()
        .iter()
        .take(MAX_SOURCES)
        .map(|source| cap(source, MAX_MESSAGE_BYTES / 4))
        .collect();
    let sources = serde_json::to_string(&sources).expect("a list of strings serializes");
    let backtrace = failure
        .backtrace()
        .map(|backtrace| cap(backtrace, MAX_BACKTRACE_BYTES));
    StoredFailure {
        message,
        sources,
        backtrace,
    }
}

/// A failure as its history row stores it.
pub(crate) struct StoredFailure {
    pub(crate) message: String,
    /// JSON array of the sources' messages.
    pub(crate) sources: String,
    pub(crate) backtrace: Option<String>,
}

/// A failed attempt's error as read back: the stored message, JSON list of sources and
/// backtrace.
pub(crate) fn stored_error(
    message: Option<String>,
    sources: Option<String>,
    backtrace: Option<String>,
) -> Option<ErrorInfo> {
    message.map(|message| ErrorInfo {
        message,
        sources: sources
            .and_then(|sources| serde_json::from_str(&sources).ok())
            .unwrap_or_default(),
        backtrace,
    })
}

/// A stored JSON payload; text that no longer parses is shown as a string, not lost.
pub(crate) fn stored_json(text: String) -> serde_json::Value {
    serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
}

/// The text of `last_error`: message and sources joined.
pub(crate) fn failure_summary(failure: &Failure) -> String {
    cap(&failure.to_string(), MAX_MESSAGE_BYTES)
}

/// Binds the parameters of a backend's recurring upsert, in the order both statements
/// number them: 1 id, 2 schedule, 3 zone, 4 job name, 5 display name, 6 payload,
/// 7 retries, 8 missed-tick policy, 9 overlap, 10 source, 11 next tick, 12 now, 13 the
/// reason a job that left the code was disabled for, 14 labels. Times come as the
/// backend stores them.
pub(crate) fn bind_recurring<'q, DB, T>(
    query: Query<'q, DB, <DB as Database>::Arguments<'q>>,
    recurring: &'q NewRecurring,
    next_run_at: T,
    now: T,
) -> Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    T: 'q + Encode<'q, DB> + Type<DB>,
    String: Encode<'q, DB> + Type<DB>,
    &'q str: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB> + Type<DB>,
    bool: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
{
    let template = &recurring.template;
    query
        .bind(recurring.id.as_str())
        .bind(recurring.schedule.expression())
        .bind(recurring.schedule.zone())
        .bind(template.name.as_str())
        .bind(template.display_name.as_str())
        .bind(template.payload.as_str())
        .bind(template.max_retries.map(i64::from))
        .bind(recurring.missed.as_stored())
        .bind(recurring.allow_overlap)
        .bind(recurring.source.as_str())
        .bind(next_run_at)
        .bind(now)
        .bind(disabled::REMOVED)
        .bind(template.labels_json())
        .bind(recurring.application.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requeueable_states_as_sql() {
        assert_eq!(
            *REQUEUEABLE,
            "('Scheduled', 'Enqueued', 'Succeeded', 'Failed', 'Deleted')"
        );
    }
}
