//! Recurring jobs on PostgreSQL.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::{jobs_insert_with, max_retries};
use crate::recurring::{NewRecurring, RecurringInfo, RecurringSource, disabled};
use crate::storage::{FireRequest, Fired, stored_json};
use crate::{JobId, MissedTicks, Result};

fn info(row: &PgRow) -> Result<RecurringInfo> {
    let payload: String = row.try_get("payload")?;
    Ok(RecurringInfo {
        id: row.try_get("id")?,
        schedule: row.try_get("schedule")?,
        zone: row.try_get("zone")?,
        job_name: row.try_get("job_name")?,
        display_name: row.try_get("display_name")?,
        payload: stored_json(payload),
        max_retries: max_retries(row)?,
        labels: super::progress::labels(row)?,
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

const COLUMNS: &str = "id, schedule, zone, job_name, display_name, payload::text AS payload, \
    labels::text AS labels, max_retries, missed, allow_overlap, enabled, disabled_reason, source, next_run_at, \
    last_run_at, last_job_id, created_at, updated_at";

pub(super) async fn upsert(
    pool: &PgPool,
    recurring: &NewRecurring,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO jobs_recurring (id, schedule, zone, job_name, display_name, payload, \
             max_retries, missed, allow_overlap, enabled, source, next_run_at, created_at, \
             updated_at, labels) \
         VALUES ($1, $2, $3, $4, $5, $6::json, $7, $8, $9, true, $10, $11, $12, $12, $14::json) \
         ON CONFLICT (id) DO UPDATE SET \
             next_run_at = CASE WHEN jobs_recurring.schedule <> excluded.schedule \
                 OR jobs_recurring.zone <> excluded.zone \
                 THEN excluded.next_run_at ELSE jobs_recurring.next_run_at END, \
             schedule = excluded.schedule, zone = excluded.zone, \
             job_name = excluded.job_name, display_name = excluded.display_name, \
             payload = excluded.payload, max_retries = excluded.max_retries, \
             labels = excluded.labels, \
             missed = excluded.missed, allow_overlap = excluded.allow_overlap, \
             source = excluded.source, \
             enabled = jobs_recurring.enabled OR jobs_recurring.disabled_reason = $13, \
             disabled_reason = NULLIF(jobs_recurring.disabled_reason, $13), \
             updated_at = excluded.updated_at",
    )
    .bind(&recurring.id)
    .bind(recurring.schedule.expression())
    .bind(recurring.schedule.zone())
    .bind(&recurring.template.name)
    .bind(&recurring.template.display_name)
    .bind(&recurring.template.payload)
    .bind(recurring.template.max_retries.map(i64::from))
    .bind(recurring.missed.as_stored())
    .bind(recurring.allow_overlap)
    .bind(recurring.source.as_str())
    .bind(recurring.next_run_at)
    .bind(now)
    .bind(disabled::REMOVED)
    .bind(recurring.template.labels_json())
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn disable_missing(
    pool: &PgPool,
    declared: &[String],
    now: DateTime<Utc>,
) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE jobs_recurring SET enabled = false, disabled_reason = $2, updated_at = $3 \
         WHERE source = 'code' AND enabled AND NOT (id = ANY($1))",
    )
    .bind(declared)
    .bind(disabled::REMOVED)
    .bind(now)
    .execute(pool)
    .await?
    .rows_affected())
}

pub(super) async fn get(pool: &PgPool, id: &str) -> Result<Option<RecurringInfo>> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM jobs_recurring WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(info)
    .transpose()
}

pub(super) async fn list(pool: &PgPool) -> Result<Vec<RecurringInfo>> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM jobs_recurring ORDER BY id"))
        .fetch_all(pool)
        .await?
        .iter()
        .map(info)
        .collect()
}

pub(super) async fn delete(pool: &PgPool, id: &str) -> Result<bool> {
    Ok(sqlx::query("DELETE FROM jobs_recurring WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected()
        > 0)
}

pub(super) async fn set_enabled(
    pool: &PgPool,
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
    Ok(query.execute(pool).await?.rows_affected() > 0)
}

pub(super) async fn due(
    pool: &PgPool,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<RecurringInfo>> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM jobs_recurring WHERE enabled AND next_run_at <= $1 \
         ORDER BY next_run_at LIMIT $2"
    ))
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?
    .iter()
    .map(info)
    .collect()
}

pub(super) async fn next_run_at(pool: &PgPool) -> Result<Option<DateTime<Utc>>> {
    Ok(
        sqlx::query_scalar("SELECT min(next_run_at) FROM jobs_recurring WHERE enabled")
            .fetch_one(pool)
            .await?,
    )
}

pub(super) async fn fire(pool: &PgPool, request: FireRequest<'_>) -> Result<Fired> {
    let mut tx = pool.begin().await?;
    // The compare-and-set: of several servers firing this tick, one updates the row;
    // the others wait on its lock, then find next_run_at changed and update nothing.
    let advanced = sqlx::query(
        "UPDATE jobs_recurring SET \
             next_run_at = COALESCE($3, next_run_at), \
             enabled = $3 IS NOT NULL, \
             disabled_reason = CASE WHEN $3 IS NULL THEN $4 ELSE disabled_reason END, \
             updated_at = $5 \
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
            tx.commit().await?;
            return Ok(Fired::SkippedOverlap);
        }
    }
    jobs_insert_with(&mut tx, request.runs).await?;
    sqlx::query("UPDATE jobs_recurring SET last_run_at = $2, last_job_id = $3 WHERE id = $1")
        .bind(request.id)
        .bind(request.now)
        .bind(last.id.as_uuid())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Fired::Created)
}
