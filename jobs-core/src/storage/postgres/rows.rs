//! Rows as PostgreSQL stores them: uuid and timestamptz columns, JSON read as text.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::storage::Fence;
use crate::storage::rows::StoredRow;
use crate::{JobId, Result};

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

/// A duration in whole microseconds, for `$n * interval '1 microsecond'`; held within a
/// century either way, so that a time it is added to stays in range.
pub(super) fn micros_of(duration: chrono::Duration) -> i64 {
    const CENTURY: i64 = 100 * 366 * 24 * 3600 * 1_000_000;
    duration
        .num_microseconds()
        .unwrap_or(if duration < chrono::Duration::zero() {
            -CENTURY
        } else {
            CENTURY
        })
        .clamp(-CENTURY, CENTURY)
}

/// Claims as two arrays, ids and tokens, for `UNNEST($n::uuid[], $m::int8[])`.
pub(super) fn fence_arrays(fences: &[Fence]) -> (Vec<Uuid>, Vec<i64>) {
    fences
        .iter()
        .map(|fence| (fence.id.as_uuid(), fence.token))
        .unzip()
}

pub(super) fn uint(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

impl StoredRow for PgRow {
    /// PostgreSQL keeps only valid text.
    fn text_lossy(&self, column: &str) -> Result<String> {
        Ok(self.try_get(column)?)
    }

    fn time(&self, column: &str) -> Result<DateTime<Utc>> {
        Ok(self.try_get(column)?)
    }

    fn time_opt(&self, column: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(self.try_get(column)?)
    }

    fn job_id(&self, column: &str) -> Result<JobId> {
        Ok(self.try_get::<Uuid, _>(column)?.into())
    }

    fn job_id_opt(&self, column: &str) -> Result<Option<JobId>> {
        Ok(self.try_get::<Option<Uuid>, _>(column)?.map(JobId::from))
    }

    fn count(&self, column: &str) -> Result<u32> {
        Ok(uint(self.try_get(column)?))
    }

    fn max_retries(&self) -> Result<Option<u32>> {
        Ok(self
            .try_get::<Option<i64>, _>("max_retries")?
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
    }
}

/// The columns a [`crate::JobSummary`] is read from.
pub(super) const SUMMARY_COLUMNS: &str = "id, name, display_name, state, queue, attempt, run_at, \
    created_at, updated_at, labels::text AS labels, progress_done, progress_total";

/// The columns a [`crate::recurring::RecurringInfo`] is read from.
pub(super) const RECURRING_COLUMNS: &str = "id, schedule, zone, job_name, display_name, payload::text AS payload, \
    labels::text AS labels, max_retries, missed, allow_overlap, enabled, disabled_reason, source, next_run_at, \
    last_run_at, last_job_id, created_at, updated_at, error, application";
