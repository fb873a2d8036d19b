//! Rows as SQLite stores them: times as INTEGER microseconds, ids as TEXT.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::storage::rows::StoredRow;
use crate::{Error, JobId, Result};

pub(super) fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub(super) fn from_micros(value: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(value).unwrap_or_default()
}

impl StoredRow for SqliteRow {
    fn text_lossy(&self, column: &str) -> Result<String> {
        let bytes: Vec<u8> = self.try_get(column)?;
        Ok(String::from_utf8(bytes)
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned()))
    }

    fn time(&self, column: &str) -> Result<DateTime<Utc>> {
        Ok(from_micros(self.try_get(column)?))
    }

    fn time_opt(&self, column: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(self.try_get::<Option<i64>, _>(column)?.map(from_micros))
    }

    fn job_id(&self, column: &str) -> Result<JobId> {
        let text: String = self.try_get(column)?;
        JobId::from_str(&text).map_err(|error| {
            Error::Database(sqlx::Error::Decode(
                format!("bad job id `{text}`: {error}").into(),
            ))
        })
    }

    fn job_id_opt(&self, column: &str) -> Result<Option<JobId>> {
        let text: Option<String> = self.try_get(column)?;
        Ok(text.and_then(|id| JobId::from_str(&id).ok()))
    }

    fn count(&self, column: &str) -> Result<u32> {
        Ok(self.try_get::<i64, _>(column)?.try_into().unwrap_or(0))
    }

    fn max_retries(&self) -> Result<Option<u32>> {
        Ok(self
            .try_get::<Option<i64>, _>("max_retries")?
            .map(|n| n.try_into().unwrap_or(0)))
    }
}

/// The columns a [`JobSummary`] is read from.
pub(super) const SUMMARY_COLUMNS: &str = "id, name, display_name, state, queue, attempt, run_at, \
    created_at, updated_at, labels, progress_done, progress_total";
