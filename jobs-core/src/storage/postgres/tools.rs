//! Agent tool calls on PostgreSQL: each caller's jobs and recurring jobs, by the exact
//! id in their `caller` column.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::PgStorage;
use super::lifecycle::jobs_insert_with;
use super::rows::{RECURRING_COLUMNS, SUMMARY_COLUMNS, text};
use crate::job::info::JobSummary;
use crate::recurring::{NewRecurring, RecurringInfo};
use crate::storage::rows::{recurring_info, state, summary};
use crate::storage::stored::bind_recurring;
use crate::storage::{Admission, NewJob, ToolStore};
use crate::{JobId, JobState, Result};

/// Serializes the quota-checked inserts of one caller until the transaction ends: a
/// second call for the caller counts only after the first committed, so two calls
/// never both see room for one. Callers whose keys hash alike merely wait for each other.
async fn lock_caller(tx: &mut PgConnection, caller: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('jobs.tool_caller:' || $1, 0))")
        .bind(caller)
        .execute(tx)
        .await?;
    Ok(())
}

fn refused_at(current: i64, limit: u32) -> Option<Admission> {
    (current >= i64::from(limit)).then_some(Admission::Refused {
        current: current.unsigned_abs(),
    })
}

impl ToolStore for PgStorage {
    async fn tool_job_insert(&self, job: &NewJob, caller: &str, limit: u32) -> Result<Admission> {
        let caller = text(caller);
        let mut tx = super::begin(&self.pool).await?;
        lock_caller(&mut tx, &caller).await?;
        let current: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs_job \
             WHERE caller = $1 AND state IN ('Enqueued', 'Scheduled')",
        )
        .bind(caller.as_ref())
        .fetch_one(&mut *tx)
        .await?;
        if let Some(refused) = refused_at(current, limit) {
            return Ok(refused);
        }
        jobs_insert_with(&mut tx, std::slice::from_ref(job)).await?;
        sqlx::query("UPDATE jobs_job SET caller = $2 WHERE id = $1")
            .bind(job.id.as_uuid())
            .bind(caller.as_ref())
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
        let caller = text(caller);
        let mut tx = super::begin(&self.pool).await?;
        lock_caller(&mut tx, &caller).await?;
        let current: i64 =
            sqlx::query_scalar("SELECT count(*) FROM jobs_recurring WHERE caller = $1")
                .bind(caller.as_ref())
                .fetch_one(&mut *tx)
                .await?;
        if let Some(refused) = refused_at(current, limit) {
            return Ok(refused);
        }
        // A plain insert, not the upsert: an id stored already fails the call rather
        // than handing another row to this caller. `$13` is the upsert's, unused here.
        let insert = sqlx::query(
            "INSERT INTO jobs_recurring (id, schedule, zone, job_name, display_name, payload, \
                 max_retries, missed, allow_overlap, enabled, source, next_run_at, created_at, \
                 updated_at, labels, application, caller) \
             VALUES ($1, $2, $3, $4, $5, $6::json, $7, $8, $9, true, $10, $11, $12, $12, \
                 $14::json, $15, $16)",
        );
        bind_recurring(insert, recurring, recurring.next_run_at, now)
            .bind(caller.as_ref())
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
        let mut select = QueryBuilder::<Postgres>::new(format!(
            "SELECT {SUMMARY_COLUMNS} FROM jobs_job WHERE caller = "
        ));
        select
            .push_bind(text(caller).into_owned())
            .push(" AND state IN ('Enqueued', 'Scheduled')");
        if let Some(after) = after {
            select.push(" AND id < ").push_bind(after.as_uuid());
        }
        select
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit.min(1000)));
        let rows = select.build().fetch_all(&self.pool).await?;
        rows.iter().map(summary).collect()
    }

    async fn tool_recurring_list(
        &self,
        caller: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RecurringInfo>> {
        let mut select = QueryBuilder::<Postgres>::new(format!(
            "SELECT {RECURRING_COLUMNS} FROM jobs_recurring WHERE caller = "
        ));
        select.push_bind(text(caller).into_owned());
        if let Some(after) = after {
            // Compared byte by byte, as the order below, whatever the database's collation.
            select
                .push(" AND id COLLATE \"C\" > ")
                .push_bind(text(after).into_owned());
        }
        select
            .push(" ORDER BY id COLLATE \"C\" LIMIT ")
            .push_bind(i64::from(limit.min(1000)));
        let rows = select.build().fetch_all(&self.pool).await?;
        rows.iter().map(recurring_info).collect()
    }

    async fn tool_job_state(&self, caller: &str, id: JobId) -> Result<Option<JobState>> {
        sqlx::query("SELECT state FROM jobs_job WHERE id = $1 AND caller = $2")
            .bind(id.as_uuid())
            .bind(text(caller).as_ref())
            .fetch_optional(&self.pool)
            .await?
            .map(|row| state(&row, "state"))
            .transpose()
    }

    async fn tool_recurring_delete(&self, caller: &str, id: &str) -> Result<bool> {
        Ok(
            sqlx::query("DELETE FROM jobs_recurring WHERE id = $1 AND caller = $2")
                .bind(text(id).as_ref())
                .bind(text(caller).as_ref())
                .execute(&self.pool)
                .await?
                .rows_affected()
                > 0,
        )
    }
}
