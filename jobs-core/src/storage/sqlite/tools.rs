//! Agent tool calls on SQLite: each caller's jobs and recurring jobs, by the exact id
//! in their `caller` column.

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Sqlite};

use super::lifecycle::jobs_insert_with;
use super::rows::{SUMMARY_COLUMNS, micros};
use super::{SqliteStorage, begin};
use crate::job::info::JobSummary;
use crate::recurring::{NewRecurring, RecurringInfo};
use crate::storage::rows::{recurring_info, state, summary};
use crate::storage::stored::bind_recurring;
use crate::storage::{Admission, NewJob, ToolStore};
use crate::{JobId, JobState, Result};

impl ToolStore for SqliteStorage {
    async fn tool_job_insert(&self, job: &NewJob, caller: &str, limit: u32) -> Result<Admission> {
        // The write lock, taken at `BEGIN`, is held from the count to the commit: no other
        // write of any process comes in between.
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        let current: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs_job WHERE caller = ? AND state IN ('Enqueued', 'Scheduled')",
        )
        .bind(caller)
        .fetch_one(&mut *tx)
        .await?;
        if current >= i64::from(limit) {
            return Ok(Admission::Refused {
                current: current.unsigned_abs(),
            });
        }
        jobs_insert_with(&mut tx, std::slice::from_ref(job)).await?;
        sqlx::query("UPDATE jobs_job SET caller = ?2 WHERE id = ?1")
            .bind(job.id.to_string())
            .bind(caller)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Admission::Stored)
    }

    async fn tool_recurring_insert(
        &self,
        recurring: &NewRecurring,
        caller: &str,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Admission> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        let current: i64 =
            sqlx::query_scalar("SELECT count(*) FROM jobs_recurring WHERE caller = ?")
                .bind(caller)
                .fetch_one(&mut *tx)
                .await?;
        if current >= i64::from(limit) {
            return Ok(Admission::Refused {
                current: current.unsigned_abs(),
            });
        }
        // A plain insert, not the upsert: an id stored already fails the call rather
        // than handing another row to this caller.
        let insert = sqlx::query(
            "INSERT INTO jobs_recurring (id, schedule, zone, job_name, display_name, payload, \
                 max_retries, missed, allow_overlap, enabled, source, next_run_at, created_at, \
                 updated_at, labels, application, caller) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10, ?11, ?12, ?12, ?14, ?15, ?16)",
        );
        bind_recurring(
            insert,
            recurring,
            micros(recurring.next_run_at),
            micros(now),
        )
        .bind(caller)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Admission::Stored)
    }

    async fn tool_jobs_list(
        &self,
        caller: &str,
        after: Option<JobId>,
        limit: u32,
    ) -> Result<Vec<JobSummary>> {
        let mut select = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {SUMMARY_COLUMNS} FROM jobs_job WHERE caller = "
        ));
        select
            .push_bind(caller.to_owned())
            .push(" AND state IN ('Enqueued', 'Scheduled')");
        if let Some(after) = after {
            select.push(" AND id < ").push_bind(after.to_string());
        }
        select
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit.min(1000)));
        let rows = select.build().fetch_all(&self.reader).await?;
        rows.iter().map(summary).collect()
    }

    async fn tool_recurring_list(
        &self,
        caller: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RecurringInfo>> {
        let mut select =
            QueryBuilder::<Sqlite>::new("SELECT * FROM jobs_recurring WHERE caller = ");
        select.push_bind(caller.to_owned());
        if let Some(after) = after {
            select.push(" AND id > ").push_bind(after.to_owned());
        }
        select
            .push(" ORDER BY id LIMIT ")
            .push_bind(i64::from(limit.min(1000)));
        let rows = select.build().fetch_all(&self.reader).await?;
        rows.iter().map(recurring_info).collect()
    }

    async fn tool_job_state(&self, caller: &str, id: JobId) -> Result<Option<JobState>> {
        sqlx::query("SELECT state FROM jobs_job WHERE id = ? AND caller = ?")
            .bind(id.to_string())
            .bind(caller)
            .fetch_optional(&self.reader)
            .await?
            .map(|row| state(&row, "state"))
            .transpose()
    }

    async fn tool_recurring_delete(&self, caller: &str, id: &str) -> Result<bool> {
        Ok(
            sqlx::query("DELETE FROM jobs_recurring WHERE id = ? AND caller = ?")
                .bind(id)
                .bind(caller)
                .execute(&mut *self.writer.lock().await?)
                .await?
                .rows_affected()
                > 0,
        )
    }
}
