//! What a running job writes on SQLite besides its result: log lines, progress, step
//! results; and the log lines read back.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqlitePool;
use sqlx::{QueryBuilder, Sqlite};

use super::rows::micros;
use super::{ROWS_PER_INSERT, SqliteStorage, begin};
use crate::job::info::LogEntry;
use crate::storage::rows::log_entry;
use crate::storage::stored::{MAX_LOG_LINE_BYTES, cap};
use crate::storage::{Fence, LogLine, ProgressUpdate, RunningStore};
use crate::{JobId, Result};

/// The log lines of a job, in the order written.
pub(super) async fn logs(reader: &SqlitePool, id: JobId) -> Result<Vec<LogEntry>> {
    let lines = sqlx::query(
        "SELECT at, attempt, level, message FROM jobs_log WHERE job_id = ? ORDER BY seq",
    )
    .bind(id.to_string())
    .fetch_all(reader)
    .await?;
    lines.iter().map(log_entry).collect()
}

impl RunningStore for SqliteStorage {
    async fn logs_insert(&self, lines: &[LogLine]) -> Result<()> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        for chunk in lines.chunks(ROWS_PER_INSERT) {
            // Only the lines of attempts whose claim still holds.
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO jobs_log (job_id, at, attempt, level, message) \
                 SELECT line.column1, line.column2, line.column3, line.column4, line.column5 \
                 FROM (",
            );
            insert.push_values(chunk, |mut row, line| {
                row.push_bind(line.job_id.to_string())
                    .push_bind(micros(line.at))
                    .push_bind(i64::from(line.attempt))
                    .push_bind(line.level.as_str())
                    .push_bind(cap(&line.message, MAX_LOG_LINE_BYTES))
                    .push_bind(line.token);
            });
            insert.push(
                ") AS line WHERE EXISTS (SELECT 1 FROM jobs_job WHERE jobs_job.id = line.column1 \
                 AND jobs_job.token = line.column6 AND jobs_job.state = 'Processing')",
            );
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn progress_update(&self, updates: &[ProgressUpdate]) -> Result<()> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        for update in updates {
            sqlx::query(
                "UPDATE jobs_job SET progress_done = ?2, progress_total = ?3 \
                 WHERE id = ?1 AND token = ?4 AND state = 'Processing'",
            )
            .bind(update.job_id.to_string())
            .bind(i64::try_from(update.done).unwrap_or(i64::MAX))
            .bind(i64::try_from(update.total).unwrap_or(i64::MAX))
            .bind(update.token)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn job_parent_result(&self, id: JobId) -> Result<Option<Option<String>>> {
        Ok(sqlx::query_scalar(
            "SELECT parent.result FROM jobs_job AS job \
             JOIN jobs_job AS parent ON parent.id = job.parent_id WHERE job.id = ?",
        )
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await?)
    }

    async fn step_get(&self, job_id: JobId, name: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM jobs_step WHERE job_id = ? AND name = ?")
                .bind(job_id.to_string())
                .bind(name)
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    async fn step_put(&self, job: Fence, name: &str, value: &str, at: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO jobs_step (job_id, name, value, at) SELECT ?1, ?2, ?3, ?4 \
             WHERE EXISTS (SELECT 1 FROM jobs_job WHERE id = ?1 AND token = ?5 \
                 AND state = 'Processing') \
             ON CONFLICT (job_id, name) DO NOTHING",
        )
        .bind(job.id.to_string())
        .bind(name)
        .bind(value)
        .bind(micros(at))
        .bind(job.token)
        .execute(&mut *self.writer.lock().await?)
        .await?;
        Ok(())
    }
}
