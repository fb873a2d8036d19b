//! Recurring jobs on PostgreSQL.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::PgStorage;
use super::lifecycle::jobs_insert_with;
use super::rows::{RECURRING_COLUMNS, text};
use crate::Result;
use crate::recurring::{NewRecurring, RecurringInfo, disabled};
use crate::storage::rows::recurring_info;
use crate::storage::stored::bind_recurring;
use crate::storage::{FireRequest, Fired, NewJob, RecurringStore, Registration, release_order};

impl RecurringStore for PgStorage {
    async fn recurring_upsert(&self, recurring: &NewRecurring, now: DateTime<Utc>) -> Result<()> {
        upsert(&mut *self.pool.acquire().await?, recurring, now).await
    }

    async fn recurring_register(
        &self,
        application: &str,
        release: &str,
        declared: &[NewRecurring],
        now: DateTime<Utc>,
    ) -> Result<Registration> {
        let mut tx = super::begin(&self.pool).await?;
        // Registrations of one application take turns; those of others do not wait.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('jobs_application'), hashtext($1))")
            .bind(application)
            .execute(&mut *tx)
            .await?;
        let stored: Option<String> =
            sqlx::query_scalar("SELECT release FROM jobs_application WHERE name = $1")
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
            "INSERT INTO jobs_application (name, release, registered_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET release = excluded.release, \
                 registered_at = excluded.registered_at",
        )
        .bind(text(application))
        .bind(text(release))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Registration::Registered { disabled })
    }

    async fn recurring_get(&self, id: &str) -> Result<Option<RecurringInfo>> {
        sqlx::query(&format!(
            "SELECT {RECURRING_COLUMNS} FROM jobs_recurring WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(recurring_info)
        .transpose()
    }

    async fn recurring_list(&self) -> Result<Vec<RecurringInfo>> {
        sqlx::query(&format!(
            "SELECT {RECURRING_COLUMNS} FROM jobs_recurring ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(recurring_info)
        .collect()
    }

    async fn recurring_delete(&self, id: &str) -> Result<bool> {
        Ok(sqlx::query("DELETE FROM jobs_recurring WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
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
                "UPDATE jobs_recurring SET enabled = true, disabled_reason = NULL, \
                 next_run_at = $2, updated_at = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(next_run_at)
            .bind(now)
        } else {
            sqlx::query(
                "UPDATE jobs_recurring SET enabled = false, disabled_reason = $2, updated_at = $3 \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(disabled::BY_USER)
            .bind(now)
        };
        Ok(query.execute(&self.pool).await?.rows_affected() > 0)
    }

    async fn recurring_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<RecurringInfo>> {
        sqlx::query(&format!(
            "SELECT {RECURRING_COLUMNS} FROM jobs_recurring WHERE enabled AND next_run_at <= $1 \
             ORDER BY next_run_at LIMIT $2"
        ))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(recurring_info)
        .collect()
    }

    async fn recurring_next_run_at(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(
            sqlx::query_scalar("SELECT min(next_run_at) FROM jobs_recurring WHERE enabled")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn recurring_trigger(&self, run: &NewJob) -> Result<()> {
        let mut tx = super::begin(&self.pool).await?;
        jobs_insert_with(&mut tx, std::slice::from_ref(run)).await?;
        sqlx::query(
            "UPDATE jobs_job SET caller = (SELECT caller FROM jobs_recurring WHERE id = $2) \
             WHERE id = $1",
        )
        .bind(run.id.as_uuid())
        .bind(run.recurring_id.as_deref())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn recurring_set_error(&self, id: &str, error: Option<&str>) -> Result<bool> {
        let updated = sqlx::query("UPDATE jobs_recurring SET error = $2 WHERE id = $1")
            .bind(id)
            .bind(error.map(text))
            .execute(&self.pool)
            .await?;
        Ok(updated.rows_affected() > 0)
    }

    async fn recurring_fire(&self, request: FireRequest<'_>) -> Result<Fired> {
        let mut tx = super::begin(&self.pool).await?;
        // The compare-and-set: of several servers firing this tick, one updates the row;
        // the others wait on its lock, then find next_run_at changed and update nothing.
        let advanced = sqlx::query(
            "UPDATE jobs_recurring SET \
                 next_run_at = COALESCE($3, next_run_at), \
                 enabled = $3 IS NOT NULL, \
                 disabled_reason = CASE WHEN $3 IS NULL THEN $4 ELSE disabled_reason END, \
                 updated_at = $5, error = NULL \
             WHERE id = $1 AND next_run_at = $2 AND enabled",
        )
        .bind(request.id)
        .bind(request.expected_next)
        .bind(request.next)
        .bind(disabled::FINISHED)
        .bind(request.now)
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
            let active: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM jobs_job WHERE recurring_id = $1 \
                 AND state IN ('Enqueued', 'Scheduled', 'Processing', 'Awaiting'))",
            )
            .bind(request.id)
            .fetch_one(&mut *tx)
            .await?;
            if active {
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
            "UPDATE jobs_recurring SET last_run_at = $2, last_job_id = $3 WHERE id = $1 \
             RETURNING caller",
        )
        .bind(request.id)
        .bind(request.now)
        .bind(last.id.as_uuid())
        .fetch_one(&mut *tx)
        .await?;
        if let Some(caller) = caller {
            // The runs of a tool call's schedule are that caller's too.
            let ids: Vec<uuid::Uuid> = request.runs.iter().map(|run| run.id.as_uuid()).collect();
            sqlx::query("UPDATE jobs_job SET caller = $1 WHERE id = ANY($2)")
                .bind(caller)
                .bind(ids)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Fired::Created)
    }
}

/// Upserts one recurring job on `conn` (see `RecurringStore::recurring_upsert`).
async fn upsert(
    conn: &mut PgConnection,
    recurring: &NewRecurring,
    now: DateTime<Utc>,
) -> Result<()> {
    let upsert = sqlx::query(
        "INSERT INTO jobs_recurring (id, schedule, zone, job_name, display_name, payload, \
                 max_retries, missed, allow_overlap, enabled, source, next_run_at, created_at, \
                 updated_at, labels, application) \
             VALUES ($1, $2, $3, $4, $5, $6::json, $7, $8, $9, true, $10, $11, $12, $12, $14::json, $15) \
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
                 enabled = jobs_recurring.enabled OR jobs_recurring.disabled_reason = $13, \
                 disabled_reason = NULLIF(jobs_recurring.disabled_reason, $13), \
                 updated_at = excluded.updated_at",
    );
    bind_recurring(upsert, recurring, recurring.next_run_at, now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Disables on `conn` what `application` no longer declares (see
/// `RecurringStore::recurring_register`).
async fn disable_missing(
    conn: &mut PgConnection,
    application: &str,
    declared: &[String],
    now: DateTime<Utc>,
) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE jobs_recurring SET enabled = false, disabled_reason = $2, updated_at = $3 \
             WHERE source = 'code' AND enabled AND NOT (id = ANY($1)) \
                 AND (application IS NULL OR application = $4)",
    )
    .bind(declared)
    .bind(disabled::REMOVED)
    .bind(now)
    .bind(application)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}
