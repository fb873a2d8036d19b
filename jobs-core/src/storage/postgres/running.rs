//! What a running job writes besides its result on PostgreSQL: log lines, progress,
//! durable step results; and what readers need of them.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::PgStorage;
use super::rows::text;
use crate::job::info::LogEntry;
use crate::storage::rows::log_entry;
use crate::storage::stored::{MAX_LOG_LINE_BYTES, cap};
use crate::storage::{Fence, LogLine, ProgressUpdate, RunningStore};
use crate::{JobId, Result};

pub(super) async fn logs(pool: &PgPool, id: JobId) -> Result<Vec<LogEntry>> {
    let rows = sqlx::query(
        "SELECT at, attempt, level, message FROM jobs_log WHERE job_id = $1 ORDER BY seq",
    )
    .bind(id.as_uuid())
    .fetch_all(pool)
    .await?;
    rows.iter().map(log_entry).collect()
}

impl RunningStore for PgStorage {
    async fn logs_insert(&self, lines: &[LogLine]) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = lines.iter().map(|line| line.job_id.as_uuid()).collect();
        let tokens: Vec<i64> = lines.iter().map(|line| line.token).collect();
        let ats: Vec<DateTime<Utc>> = lines.iter().map(|line| line.at).collect();
        let attempts: Vec<i32> = lines
            .iter()
            .map(|line| i32::try_from(line.attempt).unwrap_or(i32::MAX))
            .collect();
        let levels: Vec<&str> = lines.iter().map(|line| line.level.as_str()).collect();
        let messages: Vec<String> = lines
            .iter()
            .map(|line| text(&cap(&line.message, MAX_LOG_LINE_BYTES)).into_owned())
            .collect();
        // Only the lines of attempts whose claim still holds, in the order given. The
        // state is compared with a value the planner does not see, as in the results'
        // statement: with the literal, statistics taken before the jobs ran made it hash
        // every entry of the partial index on `Processing` for each batch of lines.
        sqlx::query(
            "INSERT INTO jobs_log (job_id, at, attempt, level, message) \
             SELECT line.id, line.at, line.attempt, line.level, line.message \
             FROM UNNEST($1::uuid[], $2::timestamptz[], $3::int4[], $4::text[], $5::text[], \
                 $6::int8[]) WITH ORDINALITY AS line (id, at, attempt, level, message, token, ord) \
             WHERE EXISTS (SELECT 1 FROM jobs_job AS job WHERE job.id = line.id \
                 AND job.token = line.token AND job.state = (SELECT 'Processing')) \
             ORDER BY line.ord",
        )
        .bind(ids)
        .bind(ats)
        .bind(attempts)
        .bind(levels)
        .bind(messages)
        .bind(tokens)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn progress_update(&self, updates: &[ProgressUpdate]) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = updates
            .iter()
            .map(|update| update.job_id.as_uuid())
            .collect();
        let done: Vec<i64> = updates
            .iter()
            .map(|update| i64::try_from(update.done).unwrap_or(i64::MAX))
            .collect();
        let total: Vec<i64> = updates
            .iter()
            .map(|update| i64::try_from(update.total).unwrap_or(i64::MAX))
            .collect();
        let tokens: Vec<i64> = updates.iter().map(|update| update.token).collect();
        // The state as a value the planner does not see, as for the log lines.
        sqlx::query(
            "UPDATE jobs_job AS job SET progress_done = new.done, progress_total = new.total \
             FROM UNNEST($1::uuid[], $2::int8[], $3::int8[], $4::int8[]) \
                 AS new (id, done, total, token) \
             WHERE job.id = new.id AND job.token = new.token \
                 AND job.state = (SELECT 'Processing')",
        )
        .bind(ids)
        .bind(done)
        .bind(total)
        .bind(tokens)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn job_parent_result(&self, id: JobId) -> Result<Option<Option<String>>> {
        Ok(sqlx::query_scalar(
            "SELECT parent.result FROM jobs_job AS job \
             JOIN jobs_job AS parent ON parent.id = job.parent_id WHERE job.id = $1",
        )
        .bind(id.as_uuid())
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn step_get(&self, job_id: JobId, name: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value::text FROM jobs_step WHERE job_id = $1 AND name = $2")
                .bind(job_id.as_uuid())
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn step_put(&self, job: Fence, name: &str, value: &str, at: DateTime<Utc>) -> Result<()> {
        // The state as a value the planner does not see, as for the log lines.
        sqlx::query(
            "INSERT INTO jobs_step (job_id, name, value, at) \
             SELECT $1, $2, $3::json, $4 \
             WHERE EXISTS (SELECT 1 FROM jobs_job WHERE id = $1 AND token = $5 \
                 AND state = (SELECT 'Processing')) \
             ON CONFLICT (job_id, name) DO NOTHING",
        )
        .bind(job.id.as_uuid())
        .bind(text(name).as_ref())
        .bind(value)
        .bind(at)
        .bind(job.token)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
