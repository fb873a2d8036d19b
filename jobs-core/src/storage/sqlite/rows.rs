//! Rows as SQLite stores them: times as INTEGER microseconds, ids as TEXT.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::MissedTicks;
use crate::record::{JobSummary, Progress};
use crate::recurring::{RecurringInfo, RecurringSource};
use crate::storage::stored::stored_json;
use crate::{Error, JobId, JobState, Result};

pub(super) fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub(super) fn from_micros(value: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(value).unwrap_or_default()
}

pub(super) fn job_id(row: &SqliteRow, column: &str) -> Result<JobId> {
    let text: String = row.try_get(column)?;
    JobId::from_str(&text).map_err(|error| {
        Error::Database(sqlx::Error::Decode(
            format!("bad job id `{text}`: {error}").into(),
        ))
    })
}

pub(super) fn job_state(row: &SqliteRow, column: &str) -> Result<JobState> {
    let text: String = row.try_get(column)?;
    JobState::from_str(&text).map_err(|error| Error::Database(sqlx::Error::Decode(error.into())))
}

pub(super) fn attempt(row: &SqliteRow) -> Result<u32> {
    Ok(row.try_get::<i64, _>("attempt")?.try_into().unwrap_or(0))
}

pub(super) fn max_retries(row: &SqliteRow) -> Result<Option<u32>> {
    Ok(row
        .try_get::<Option<i64>, _>("max_retries")?
        .map(|n| n.try_into().unwrap_or(0)))
}

pub(super) fn recurring_info(row: &SqliteRow) -> Result<RecurringInfo> {
    let payload: String = row.try_get("payload")?;
    let last_job_id: Option<String> = row.try_get("last_job_id")?;
    Ok(RecurringInfo {
        id: row.try_get("id")?,
        schedule: row.try_get("schedule")?,
        zone: row.try_get("zone")?,
        job_name: row.try_get("job_name")?,
        display_name: row.try_get("display_name")?,
        payload: stored_json(payload),
        max_retries: max_retries(row)?,
        labels: labels(row)?,
        missed: MissedTicks::from_stored(&row.try_get::<String, _>("missed")?),
        allow_overlap: row.try_get("allow_overlap")?,
        enabled: row.try_get("enabled")?,
        disabled_reason: row.try_get("disabled_reason")?,
        source: RecurringSource::from_stored(&row.try_get::<String, _>("source")?),
        next_run_at: from_micros(row.try_get("next_run_at")?),
        last_run_at: row
            .try_get::<Option<i64>, _>("last_run_at")?
            .map(from_micros),
        last_job_id: last_job_id.and_then(|id| JobId::from_str(&id).ok()),
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
    })
}

pub(super) fn summary(row: &SqliteRow) -> Result<JobSummary> {
    Ok(JobSummary {
        id: job_id(row, "id")?,
        name: row.try_get("name")?,
        display_name: row.try_get("display_name")?,
        state: job_state(row, "state")?,
        queue: row.try_get("queue")?,
        attempt: attempt(row)?,
        run_at: from_micros(row.try_get("run_at")?),
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
        labels: labels(row)?,
        progress: progress(row)?,
    })
}

pub(super) fn labels(row: &SqliteRow) -> Result<Vec<String>> {
    let labels: String = row.try_get("labels")?;
    Ok(serde_json::from_str(&labels).unwrap_or_default())
}

pub(super) fn progress(row: &SqliteRow) -> Result<Option<Progress>> {
    let done: Option<i64> = row.try_get("progress_done")?;
    let total: Option<i64> = row.try_get("progress_total")?;
    Ok(done.zip(total).map(|(done, total)| Progress {
        done: done.try_into().unwrap_or(0),
        total: total.try_into().unwrap_or(0),
    }))
}

/// The columns a [`JobSummary`] is read from.
pub(super) const SUMMARY_COLUMNS: &str = "id, name, display_name, state, queue, attempt, run_at, \
    created_at, updated_at, labels, progress_done, progress_total";
