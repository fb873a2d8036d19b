//! Batches on SQLite: the batch row with its jobs, its counts, its members, and the
//! fan-in put back to wait. The trigger of migration 20 releases the fan-in.

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Sqlite};

use super::lifecycle::{finish_update, jobs_insert_with};
use super::rows::micros;
use super::{SqliteStorage, begin};
use crate::storage::batches::{batch_member, state_count, stored_batch};
use crate::storage::rows::StoredRow;
use crate::storage::{BatchMember, BatchStore, NewBatch, NewJob, StoredBatch};
use crate::{JobId, JobState, Result};

impl BatchStore for SqliteStorage {
    async fn batch_insert(
        &self,
        batch: &NewBatch,
        members: &[NewJob],
        fan_in: &[NewJob],
    ) -> Result<()> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        let total = i64::try_from(members.len()).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO jobs_batch (id, label, created_at, total, remaining, failed, then_id, \
                 on_failure_id) VALUES (?1, ?2, ?3, ?4, ?4, 0, ?5, ?6)",
        )
        .bind(batch.id.to_string())
        .bind(batch.label.as_deref())
        .bind(micros(batch.created_at))
        .bind(total)
        .bind(batch.then_id.map(|id| id.to_string()))
        .bind(batch.on_failure_id.map(|id| id.to_string()))
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
             WHERE id = ?",
        )
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await?
        else {
            return Ok(None);
        };
        let counts = sqlx::query(
            "SELECT state, count(*) AS n FROM jobs_job INDEXED BY jobs_job_batch \
             WHERE batch_id = ? GROUP BY state",
        )
        .bind(id.to_string())
        .fetch_all(&self.reader)
        .await?;
        let by_state = counts.iter().map(state_count).collect::<Result<_>>()?;
        stored_batch(&row, by_state).map(Some)
    }

    async fn batch_of_fan_in(&self, fan_in: JobId) -> Result<Option<JobId>> {
        let row = sqlx::query(
            "SELECT id FROM jobs_batch WHERE then_id = ?1 UNION ALL \
             SELECT id FROM jobs_batch WHERE on_failure_id = ?1 LIMIT 1",
        )
        .bind(fan_in.to_string())
        .fetch_optional(&self.reader)
        .await?;
        row.map(|row| row.job_id("id")).transpose()
    }

    async fn batch_members(
        &self,
        id: JobId,
        after: Option<JobId>,
        limit: u32,
    ) -> Result<Vec<BatchMember>> {
        let mut select = QueryBuilder::<Sqlite>::new(
            "SELECT id, name, state, result FROM jobs_job INDEXED BY jobs_job_batch WHERE batch_id = ",
        );
        select.push_bind(id.to_string());
        if let Some(after) = after {
            select.push(" AND id > ").push_bind(after.to_string());
        }
        select
            .push(" ORDER BY id LIMIT ")
            .push_bind(i64::from(limit.min(1000)));
        let rows = select.build().fetch_all(&self.reader).await?;
        rows.iter().map(batch_member).collect()
    }

    async fn batch_rearm(&self, id: JobId, now: DateTime<Utc>) -> Result<bool> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        let exists = sqlx::query("SELECT 1 FROM jobs_batch WHERE id = ?")
            .bind(id.to_string())
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
            let mut update = QueryBuilder::<Sqlite>::new("UPDATE jobs_job SET state = ");
            update.push_bind(to.as_str()).push(", updated_at = ");
            update.push_bind(micros(now));
            if to == JobState::Enqueued {
                update.push(", run_at = ").push_bind(micros(now));
            }
            update
                .push(format!(
                    " WHERE {from} AND id = (SELECT {column} FROM jobs_batch WHERE id = "
                ))
                .push_bind(id.to_string())
                .push(format!("{batch_condition})"));
            finish_update(&mut tx, update, now, to).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
