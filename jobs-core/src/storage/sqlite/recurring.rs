//! Recurring jobs on SQLite.

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::lifecycle::{ids_json, jobs_insert_with};
use super::rows::{from_micros, micros};
use super::{SqliteStorage, begin};
use crate::recurring::{NewRecurring, RecurringInfo, disabled};
use crate::storage::rows::recurring_info;
use crate::storage::stored::bind_recurring;
use crate::storage::{FireRequest, Fired, NewJob, RecurringStore, Registration, release_order};
use crate::{JobId, Result};

impl RecurringStore for SqliteStorage {
    async fn recurring_upsert(&self, recurring: &NewRecurring, now: DateTime<Utc>) -> Result<()> {
        upsert(&mut *self.writer.lock().await?, recurring, now).await
    }

    async fn recurring_register(
        &self,
        application: &str,
        release: &str,
        declared: &[NewRecurring],
        now: DateTime<Utc>,
    ) -> Result<Registration> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        let stored: Option<String> =
            sqlx::query_scalar("SELECT release FROM jobs_application WHERE name = ?1")
                .bind(application)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(newer) = stored.filter(|stored| release_order(release, stored).is_lt()) {
            return Ok(Registration::Newer(newer));
        }
        for recurring in declared {
            upsert(&mut tx, recurring, now).await?;
        }
        let ids: Vec<String> = declared
            .iter()
            .map(|recurring| recurring.id.clone())
            .collect();
        let disabled = disable_missing(&mut tx, application, &ids, now).await?;
        sqlx::query(
            "INSERT INTO jobs_application (name, release, registered_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET release = excluded.release, \
                 registered_at = excluded.registered_at",
        )
        .bind(application)
        .bind(release)
        .bind(micros(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Registration::Registered { disabled })
    }

    async fn recurring_get(&self, id: &str) -> Result<Option<RecurringInfo>> {
        sqlx::query("SELECT * FROM jobs_recurring WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(recurring_info)
            .transpose()
    }

    async fn recurring_list(&self) -> Result<Vec<RecurringInfo>> {
        sqlx::query("SELECT * FROM jobs_recurring ORDER BY id")
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(recurring_info)
            .collect()
    }

    async fn recurring_delete(&self, id: &str) -> Result<bool> {
        Ok(sqlx::query("DELETE FROM jobs_recurring WHERE id = ?")
            .bind(id)
            .execute(&mut *self.writer.lock().await?)
            .await?
            .rows_affected()
            > 0)
    }

    async fn recurring_set_enabled(
        &self,
        id: &str,
        enabled: bool,
        next_run_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let query = if enabled {
            sqlx::query(
                "UPDATE jobs_recurring SET enabled = 1, disabled_reason = NULL, \
                 next_run_at = ?2, updated_at = ?3 WHERE id = ?1",
            )
            .bind(id)
            .bind(micros(next_run_at))
            .bind(micros(now))
        } else {
            sqlx::query(
                "UPDATE jobs_recurring SET enabled = 0, disabled_reason = ?2, updated_at = ?3 \
                 WHERE id = ?1",
            )
            .bind(id)
            .bind(disabled::BY_USER)
            .bind(micros(now))
        };
        Ok(query
            .execute(&mut *self.writer.lock().await?)
            .await?
            .rows_affected()
            > 0)
    }

    async fn recurring_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<RecurringInfo>> {
        sqlx::query(
            "SELECT * FROM jobs_recurring WHERE enabled = 1 AND next_run_at <= ? \
             ORDER BY next_run_at LIMIT ?",
        )
        .bind(micros(now))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(recurring_info)
        .collect()
    }

    async fn recurring_next_run_at(&self) -> Result<Option<DateTime<Utc>>> {
        let next: Option<i64> =
            sqlx::query_scalar("SELECT MIN(next_run_at) FROM jobs_recurring WHERE enabled = 1")
                .fetch_one(&self.reader)
                .await?;
        Ok(next.map(from_micros))
    }

    async fn recurring_trigger(&self, run: &NewJob) -> Result<()> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        jobs_insert_with(&mut tx, std::slice::from_ref(run)).await?;
        sqlx::query(
            "UPDATE jobs_job SET caller = (SELECT caller FROM jobs_recurring WHERE id = ?2) \
             WHERE id = ?1",
        )
        .bind(run.id.to_string())
        .bind(run.recurring_id.as_deref())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn recurring_set_error(&self, id: &str, error: Option<&str>) -> Result<bool> {
        let updated = sqlx::query("UPDATE jobs_recurring SET error = ?2 WHERE id = ?1")
            .bind(id)
            .bind(error)
            .execute(&mut *self.writer.lock().await?)
            .await?;
        Ok(updated.rows_affected() > 0)
    }

    async fn recurring_fire(&self, request: FireRequest<'_>) -> Result<Fired> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        let advanced = match request.next {
            Some(next) => sqlx::query(
                "UPDATE jobs_recurring SET next_run_at = ?3, updated_at = ?4, error = NULL \
                 WHERE id = ?1 AND next_run_at = ?2 AND enabled = 1",
            )
            .bind(request.id)
            .bind(micros(request.expected_next))
            .bind(micros(next))
            .bind(micros(request.now)),
            None => sqlx::query(
                "UPDATE jobs_recurring SET enabled = 0, disabled_reason = ?3, updated_at = ?4, \
                 error = NULL WHERE id = ?1 AND next_run_at = ?2 AND enabled = 1",
            )
            .bind(request.id)
            .bind(micros(request.expected_next))
            .bind(disabled::FINISHED)
            .bind(micros(request.now)),
        }
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if advanced == 0 {
            return Ok(Fired::Lost);
        }
        let Some(last) = request.runs.last() else {
            tx.commit().await?;
            return Ok(Fired::Created);
        };
        if !request.allow_overlap {
            let active = sqlx::query(
                "SELECT 1 FROM jobs_job WHERE recurring_id = ? \
                 AND state IN ('Enqueued', 'Scheduled', 'Processing', 'Awaiting') LIMIT 1",
            )
            .bind(request.id)
            .fetch_optional(&mut *tx)
            .await?;
            if active.is_some() {
                if request.wait_for_active {
                    // Rolled back: the tick stays due until the active run ends.
                    return Ok(Fired::Waiting);
                }
                tx.commit().await?;
                return Ok(Fired::SkippedOverlap);
            }
        }
        jobs_insert_with(&mut tx, request.runs).await?;
        let caller: Option<String> = sqlx::query_scalar(
            "UPDATE jobs_recurring SET last_run_at = ?2, last_job_id = ?3 WHERE id = ?1 \
             RETURNING caller",
        )
        .bind(request.id)
        .bind(micros(request.now))
        .bind(last.id.to_string())
        .fetch_one(&mut *tx)
        .await?;
        if let Some(caller) = caller {
            // The runs of a tool call's schedule are that caller's too.
            let ids: Vec<JobId> = request.runs.iter().map(|run| run.id).collect();
            sqlx::query(
                "UPDATE jobs_job SET caller = ?1 WHERE id IN (SELECT value FROM json_each(?2))",
            )
            .bind(caller)
            .bind(ids_json(&ids))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Fired::Created)
    }
}

/// Upserts one recurring job on `conn` (see `RecurringStore::recurring_upsert`).
async fn upsert(
    conn: &mut SqliteConnection,
    recurring: &NewRecurring,
    now: DateTime<Utc>,
) -> Result<()> {
    let upsert = sqlx::query(
        "INSERT INTO jobs_recurring (id, schedule, zone, job_name, display_name, payload, \
                 max_retries, missed, allow_overlap, enabled, source, next_run_at, created_at, \
                 updated_at, labels, application) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10, ?11, ?12, ?12, ?14, ?15) \
             ON CONFLICT (id) DO UPDATE SET \
                 next_run_at = CASE WHEN jobs_recurring.schedule <> excluded.schedule \
                     OR jobs_recurring.zone <> excluded.zone \
                     THEN excluded.next_run_at ELSE jobs_recurring.next_run_at END, \
                 schedule = excluded.schedule, zone = excluded.zone, \
                 job_name = excluded.job_name, display_name = excluded.display_name, \
                 payload = excluded.payload, max_retries = excluded.max_retries, \
                 labels = excluded.labels, \
                 missed = excluded.missed, allow_overlap = excluded.allow_overlap, \
                 source = excluded.source, application = excluded.application, \
                 enabled = CASE WHEN jobs_recurring.disabled_reason = ?13 \
                     THEN 1 ELSE jobs_recurring.enabled END, \
                 disabled_reason = CASE WHEN jobs_recurring.disabled_reason = ?13 \
                     THEN NULL ELSE jobs_recurring.disabled_reason END, \
                 updated_at = excluded.updated_at",
    );
    bind_recurring(
        upsert,
        recurring,
        micros(recurring.next_run_at),
        micros(now),
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Disables on `conn` what `application` no longer declares (see
/// `RecurringStore::recurring_register`).
async fn disable_missing(
    conn: &mut SqliteConnection,
    application: &str,
    declared: &[String],
    now: DateTime<Utc>,
) -> Result<u64> {
    let mut update =
        QueryBuilder::<Sqlite>::new("UPDATE jobs_recurring SET enabled = 0, disabled_reason = ");
    update
        .push_bind(disabled::REMOVED)
        .push(", updated_at = ")
        .push_bind(micros(now))
        .push(" WHERE source = 'code' AND enabled = 1 AND (application IS NULL OR application = ")
        .push_bind(application.to_owned())
        .push(")");
    if !declared.is_empty() {
        update.push(" AND id NOT IN (");
        let mut ids = update.separated(", ");
        for id in declared {
            ids.push_bind(id.clone());
        }
        update.push(")");
    }
    Ok(update.build().execute(&mut *conn).await?.rows_affected())
}
