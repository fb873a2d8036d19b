//! Rows as PostgreSQL stores them: uuid and timestamptz columns, JSON read as text.

use std::borrow::Cow;

use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::MissedTicks;
use crate::record::{JobSummary, Progress};
use crate::recurring::{RecurringInfo, RecurringSource};
use crate::storage::stored::stored_json;
use crate::{Error, JobId, JobState, Result};

/// PostgreSQL `text` cannot hold NUL; a NUL in an error message or display name must not
/// make the write fail (a result that cannot be written would be retried forever).
pub(super) fn text(value: &str) -> Cow<'_, str> {
    if value.contains('\0') {
        Cow::Owned(value.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(value)
    }
}

pub(super) fn int(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

pub(super) fn uint(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

pub(super) fn job_state(row: &PgRow, column: &str) -> Result<JobState> {
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|error: crate::UnknownState| Error::Database(sqlx::Error::Decode(error.into())))
}

pub(super) fn attempt(row: &PgRow) -> Result<u32> {
    Ok(uint(row.try_get("attempt")?))
}

pub(super) fn max_retries(row: &PgRow) -> Result<Option<u32>> {
    Ok(row
        .try_get::<Option<i64>, _>("max_retries")?
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
}

pub(super) fn summary(row: &PgRow) -> Result<JobSummary> {
    Ok(JobSummary {
        id: row.try_get::<Uuid, _>("id")?.into(),
        name: row.try_get("name")?,
        display_name: row.try_get("display_name")?,
        state: job_state(row, "state")?,
        queue: row.try_get("queue")?,
        attempt: attempt(row)?,
        run_at: row.try_get("run_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        labels: labels(row)?,
        progress: progress(row)?,
    })
}

pub(super) fn labels(row: &PgRow) -> Result<Vec<String>> {
    let labels: String = row.try_get("labels")?;
    Ok(serde_json::from_str(&labels).unwrap_or_default())
}

pub(super) fn progress(row: &PgRow) -> Result<Option<Progress>> {
    let done: Option<i64> = row.try_get("progress_done")?;
    let total: Option<i64> = row.try_get("progress_total")?;
    Ok(done.zip(total).map(|(done, total)| Progress {
        done: done.try_into().unwrap_or(0),
        total: total.try_into().unwrap_or(0),
    }))
}

pub(super) fn recurring_info(row: &PgRow) -> Result<RecurringInfo> {
    let payload: String = row.try_get("payload")?;
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
        next_run_at: row.try_get("next_run_at")?,
        last_run_at: row.try_get("last_run_at")?,
        last_job_id: row
            .try_get::<Option<Uuid>, _>("last_job_id")?
            .map(JobId::from),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(super) const RECURRING_COLUMNS: &str = "id, schedule, zone, job_name, display_name, payload::text AS payload, \
    labels::text AS labels, max_retries, missed, allow_overlap, enabled, disabled_reason, source, next_run_at, \
    last_run_at, last_job_id, created_at, updated_at";
