//! Batches on PostgreSQL: the batch row with its jobs, its counts, its members, and the
//! fan-in put back to wait. The trigger of migration 23 releases the fan-in.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, QueryBuilder};

use super::PgStorage;
use super::lifecycle::jobs_insert_with;
use super::listener::CHANNEL;
use crate::storage::batches::{batch_member, state_count, stored_batch};
use crate::storage::{BatchMember, BatchStore, NewBatch, NewJob, StoredBatch};
use crate::{JobId, JobState, Result};

impl BatchStore for PgStorage {
    async fn batch_insert(
        &self,
        batch: &NewBatch,
        members: &[NewJob],
        fan_in: &[NewJob],
    ) -> Result<()> {
        let mut tx = super::begin(&self.pool).await?;
        let total = i64::try_from(members.len()).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO jobs_batch (id, label, created_at, total, remaining, failed, then_id, \
                 on_failure_id) VALUES ($1, $2, $3, $4, $4, 0, $5, $6)",
        )
        .bind(batch.id.as_uuid())
        .bind(batch.label.as_deref())
        .bind(batch.created_at)
        .bind(total)
        .bind(batch.then_id.map(|id| id.as_uuid()))
        .bind(batch.on_failure_id.map(|id| id.as_uuid()))
        .execute(&mut *tx)
        .await?;
        jobs_insert_with(&mut tx, members).await?;
        jobs_insert_with(&mut tx, fan_in).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn batch_get(&self, id: JobId) -> Result<Option<StoredBatch>> {
        let Some(row) = sqlx::query(
            "SELECT label, created_at, total, then_id, on_failure_id FROM jobs_batch \
             WHERE id = $1",
        )
        .bind(id.as_uuid())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let counts = sqlx::query(
            "SELECT state, count(*) AS n FROM jobs_job WHERE batch_id = $1 GROUP BY state",
        )
        .bind(id.as_uuid())
        .fetch_all(&self.pool)
        .await?;
        let by_state = counts.iter().map(state_count).collect::<Result<_>>()?;
        stored_batch(&row, by_state).map(Some)
    }

    async fn batch_of_fan_in(&self, fan_in: JobId) -> Result<Option<JobId>> {
        let batch: Option<uuid::Uuid> = sqlx::query_scalar(
            "SELECT id FROM jobs_batch WHERE then_id = $1 UNION ALL \
             SELECT id FROM jobs_batch WHERE on_failure_id = $1 LIMIT 1",
        )
        .bind(fan_in.as_uuid())
        .fetch_optional(&self.pool)
        .await?;
        Ok(batch.map(JobId::from))
    }

    async fn batch_members(
        &self,
        id: JobId,
        after: Option<JobId>,
        limit: u32,
    ) -> Result<Vec<BatchMember>> {
        let mut select = QueryBuilder::<Postgres>::new(
            "SELECT id, name, state, result FROM jobs_job WHERE batch_id = ",
        );
        select.push_bind(id.as_uuid());
        if let Some(after) = after {
            select.push(" AND id > ").push_bind(after.as_uuid());
        }
        select
            .push(" ORDER BY id LIMIT ")
            .push_bind(i64::from(limit.min(1000)));
        let rows = select.build().fetch_all(&self.pool).await?;
        rows.iter().map(batch_member).collect()
    }

    async fn batch_rearm(&self, id: JobId, now: DateTime<Utc>) -> Result<bool> {
        let mut tx = super::begin(&self.pool).await?;
        // The batch row first: a member's change waits for this transaction, and reads
        // the fan-in as it leaves it.
        let exists = sqlx::query("SELECT 1 FROM jobs_batch WHERE id = $1 FOR UPDATE")
            .bind(id.as_uuid())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Ok(false);
        }
        let steps = [
            (
                "then_id",
                "state IN ('Failed', 'Deleted')",
                "",
                JobState::Awaiting,
            ),
            (
                "on_failure_id",
                "state IN ('Succeeded', 'Failed', 'Deleted')",
                " AND failed > 0",
                JobState::Awaiting,
            ),
            (
                "then_id",
                "state = 'Awaiting'",
                " AND remaining = 0 AND failed = 0",
                JobState::Enqueued,
            ),
        ];
        for (column, from, batch_condition, to) in steps {
            let mut update =
                QueryBuilder::<Postgres>::new("WITH moved AS (UPDATE jobs_job SET state = ");
            update
                .push_bind(to.as_str())
                .push(", updated_at = ")
                .push_bind(now);
            if to == JobState::Enqueued {
                update.push(", run_at = ").push_bind(now);
            }
            update
                .push(format!(
                    " WHERE {from} AND id = (SELECT {column} FROM jobs_batch WHERE id = "
                ))
                .push_bind(id.as_uuid())
                .push(format!(
                    "{batch_condition}) RETURNING id, attempt), history AS ( \
                     INSERT INTO jobs_event (job_id, at, state, attempt) SELECT id, "
                ))
                .push_bind(now)
                .push(", ")
                .push_bind(to.as_str())
                .push(", attempt FROM moved) SELECT (SELECT pg_notify(jobs_channel(")
                .push_bind(CHANNEL)
                .push("), '') WHERE EXISTS (SELECT 1 FROM moved)) AS notified");
            update.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
