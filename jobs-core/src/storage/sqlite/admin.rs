//! What the dashboard asks of SQLite: read, list, delete, requeue, counts, throughput,
//! servers, and the pruning of old jobs.

use std::ops::Range;

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::continuations::delete_continuations;
use super::lifecycle::{UNSERVED, events_insert, finish_update};
use super::rows::{SUMMARY_COLUMNS, from_micros, micros};
use super::running::logs;
use super::{SqliteStorage, begin};
use crate::job::info::{
    JobInfo, JobQuery, JobSummary, PauseKind, Paused, ServerInfo, ThroughputPoint,
};
use crate::storage::rows::{
    StoredRow, history_entry, job_info, paused, requeue_refusal, server_info, state, summary,
};
use crate::storage::stored::REQUEUEABLE;
use crate::storage::{AdminStore, QueueCounts, Requeue, Waiting, WaitingBy};
use crate::{JobId, JobState, Result};

/// The counts of [`AdminStore::jobs_count_by_queue`]; `?1` is now.
pub(super) const QUEUE_COUNTS: &str = "SELECT queue, \
         COALESCE(SUM(state = 'Enqueued' OR (state = 'Scheduled' AND run_at <= ?1)), 0) \
             AS waiting, \
         COALESCE(SUM(state = 'Scheduled' AND run_at > ?1), 0) AS scheduled, \
         COALESCE(SUM(state = 'Processing'), 0) AS running, \
         COALESCE(SUM(state = 'Failed'), 0) AS failed \
     FROM jobs_job INDEXED BY jobs_job_state \
     WHERE state IN ('Enqueued', 'Scheduled', 'Processing', 'Failed') \
     GROUP BY queue ORDER BY queue";

/// The counts of [`AdminStore::jobs_count`]: the counter rows the triggers of the job
/// table keep, never the job table itself.
pub(super) const STATE_COUNTS: &str =
    "SELECT state, n FROM jobs_state_count WHERE n <> 0 ORDER BY state";

/// A job's history, `?1` its id: its history rows, with the entries its rows say
/// instead of history rows of their own, each where its row would have been: first its
/// creation (migration 32), when no row was written for it; before each row that ends
/// an attempt and holds its start (`started_at`, migration 33), that start; last, the
/// start of the attempt running now, when its row holds it.
pub(super) const HISTORY: &str = "\
    SELECT at, state, attempt, server, message, sources, backtrace FROM ( \
        SELECT created_at AS at, created_state AS state, 0 AS attempt, NULL AS server, \
            NULL AS message, NULL AS sources, NULL AS backtrace, 0 AS part, 0 AS seq, \
            0 AS sub \
        FROM jobs_job WHERE id = ?1 AND created_state IS NOT NULL \
        UNION ALL \
        SELECT started_at, 'Processing', attempt, server, NULL, NULL, NULL, 1, seq, 0 \
        FROM jobs_event WHERE job_id = ?1 AND started_at IS NOT NULL \
        UNION ALL \
        SELECT at, state, attempt, server, message, sources, backtrace, 1, seq, 1 \
        FROM jobs_event WHERE job_id = ?1 \
        UNION ALL \
        SELECT started_at, 'Processing', attempt, owner, NULL, NULL, NULL, 2, 0, 0 \
        FROM jobs_job WHERE id = ?1 AND state = 'Processing' AND started_token = token \
        UNION ALL \
        SELECT started_at, 'Processing', attempt, succeeded_by, NULL, NULL, NULL, 2, 0, 0 \
        FROM jobs_job WHERE id = ?1 AND state = 'Succeeded' AND succeeded_by IS NOT NULL \
            AND started_at IS NOT NULL \
        UNION ALL \
        SELECT updated_at, 'Succeeded', attempt, succeeded_by, NULL, NULL, NULL, 2, 0, 1 \
        FROM jobs_job WHERE id = ?1 AND state = 'Succeeded' AND succeeded_by IS NOT NULL \
    ) ORDER BY part, seq, sub";

/// The finished attempts per minute since `?1`: the stored results, and the successes
/// their job rows say (migration 34), read through the prune's index of succeeded jobs
/// by time.
pub(super) const THROUGHPUT: &str = "\
    SELECT at / 60000000 AS minute, \
        SUM(state = 'Succeeded') AS succeeded, SUM(state <> 'Succeeded') AS failed \
    FROM ( \
        SELECT at, state FROM jobs_event \
        WHERE at >= ?1 AND (state = 'Succeeded' OR message IS NOT NULL) \
            AND state <> 'Enqueued' \
        UNION ALL \
        SELECT updated_at, state FROM jobs_job \
        WHERE state = 'Succeeded' AND updated_at >= ?1 AND succeeded_by IS NOT NULL \
    ) \
    GROUP BY minute ORDER BY minute";

/// Appends the query's filters (state, name, text search) as `AND …` conditions.
fn push_filters(builder: &mut QueryBuilder<'_, Sqlite>, query: &JobQuery) {
    if let Some(state) = query.state {
        builder.push(" AND state = ").push_bind(state.as_str());
    }
    if let Some(name) = &query.name {
        builder.push(" AND name = ").push_bind(name.clone());
    }
    if let Some(label) = &query.label {
        // The label's own rows (migration 27), not a scan of every job's labels. A page
        // of jobs reads them in order instead (`jobs_list`); this serves the requeue.
        builder
            .push(" AND id IN (SELECT job_id FROM jobs_job_label WHERE label = ")
            .push_bind(label.clone())
            .push(")");
    }
    if let Some(batch) = query.batch {
        builder
            .push(" AND batch_id = ")
            .push_bind(batch.to_string());
    }
    if let Some(pattern) = query.like_pattern() {
        builder
            .push(" AND (lower(display_name) LIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\' OR lower(name) LIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\')");
    }
}

/// The statement of a page of jobs (after `prefix`, for a test's `EXPLAIN QUERY PLAN`).
pub(super) fn list_statement<'a>(prefix: &str, query: &JobQuery) -> QueryBuilder<'a, Sqlite> {
    // With a label, the label's rows newest job first, each job read by its id and
    // kept if it passes the other filters: a page reads about the rows it shows.
    // As `id IN (…)` SQLite first gathered every job of the label (100,000 rows of
    // a table of 10,000,000 took 65 ms). CROSS JOIN keeps the label's rows outside.
    let (mut select, order, query) = match &query.label {
        Some(label) => {
            let mut from = QueryBuilder::<Sqlite>::new(format!(
                "{prefix}SELECT {SUMMARY_COLUMNS} FROM jobs_job_label AS l \
                 CROSS JOIN jobs_job ON jobs_job.id = l.job_id WHERE l.label = "
            ));
            from.push_bind(label.clone());
            let others = JobQuery {
                label: None,
                ..query.clone()
            };
            (from, "l.job_id", others)
        }
        None => (
            QueryBuilder::<Sqlite>::new(format!(
                "{prefix}SELECT {SUMMARY_COLUMNS} FROM jobs_job WHERE 1 = 1"
            )),
            "id",
            query.clone(),
        ),
    };
    push_filters(&mut select, &query);
    if let Some(after) = query.after {
        select
            .push(format!(" AND {order} < "))
            .push_bind(after.to_string());
    }
    select
        .push(format!(" ORDER BY {order} DESC LIMIT "))
        .push_bind(i64::from(query.limit.min(1000)));
    select
}

/// The start of a requeue: every requeueable row whose attempt is not still live, to
/// which the caller adds conditions.
fn requeue_update(now: DateTime<Utc>) -> QueryBuilder<'static, Sqlite> {
    let mut update = QueryBuilder::<Sqlite>::new(
        "UPDATE jobs_job SET state = 'Enqueued', attempt = 0, rescues = 0, owner = NULL, \
         lease_until = NULL, ahead = 0, run_at = ",
    );
    update
        .push_bind(micros(now))
        .push(", updated_at = ")
        .push_bind(micros(now))
        .push(format!(" WHERE state IN {}", *REQUEUEABLE))
        .push(" AND (owner IS NULL OR lease_until IS NULL OR lease_until <= ")
        .push_bind(micros(now))
        .push(")");
    update
}

impl AdminStore for SqliteStorage {
    async fn unique_prune(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
        self.prune_unique(before, limit).await
    }

    async fn job_get(&self, id: JobId) -> Result<Option<JobInfo>> {
        let Some(row) = sqlx::query(&format!(
            "SELECT *, {UNSERVED} AS waiting_for_server FROM jobs_job WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await?
        else {
            return Ok(None);
        };
        let events = sqlx::query(HISTORY)
            .bind(id.to_string())
            .fetch_all(&self.reader)
            .await?;
        let history = events
            .iter()
            .map(history_entry)
            .collect::<Result<Vec<_>>>()?;
        let logs = logs(&self.reader, id).await?;
        Ok(Some(job_info(&row, id, history, logs)?))
    }

    async fn jobs_list(&self, query: &JobQuery) -> Result<Vec<JobSummary>> {
        let mut select = list_statement("", query);
        let rows = select.build().fetch_all(&self.reader).await?;
        rows.iter().map(summary).collect()
    }

    async fn job_delete(&self, id: JobId, now: DateTime<Utc>) -> Result<bool> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        let Some(row) = sqlx::query(
            "UPDATE jobs_job SET state = 'Deleted', updated_at = ?2 \
             WHERE id = ?1 AND state <> 'Deleted' RETURNING attempt",
        )
        .bind(id.to_string())
        .bind(micros(now))
        .fetch_optional(&mut *tx)
        .await?
        else {
            let exists = sqlx::query("SELECT 1 FROM jobs_job WHERE id = ?")
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            return Ok(exists);
        };
        events_insert(
            &mut tx,
            [(id, now, JobState::Deleted, row.count("attempt")?, None)],
        )
        .await?;
        delete_continuations(&mut tx, vec![id], now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn job_requeue(
        &self,
        id: JobId,
        now: DateTime<Utc>,
        _offset: chrono::Duration,
    ) -> Result<Requeue> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        let mut update = requeue_update(now);
        update.push(" AND id = ").push_bind(id.to_string());
        if finish_update(&mut tx, update, now, JobState::Enqueued).await? > 0 {
            tx.commit().await?;
            return Ok(Requeue::Requeued);
        }
        let row = sqlx::query("SELECT state, owner FROM jobs_job WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        requeue_refusal(row.as_ref())
    }

    async fn jobs_requeue_matching(
        &self,
        query: &JobQuery,
        now: DateTime<Utc>,
        _offset: chrono::Duration,
    ) -> Result<u64> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        let mut update = requeue_update(now);
        push_filters(&mut update, query);
        let requeued = finish_update(&mut tx, update, now, JobState::Enqueued).await?;
        tx.commit().await?;
        Ok(requeued)
    }

    async fn jobs_delete_matching(&self, query: &JobQuery, now: DateTime<Utc>) -> Result<u64> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        let mut update =
            QueryBuilder::<Sqlite>::new("UPDATE jobs_job SET state = 'Deleted', updated_at = ");
        update
            .push_bind(micros(now))
            .push(" WHERE state <> 'Deleted'");
        push_filters(&mut update, query);
        update.push(" RETURNING id, attempt");
        let rows = update.build().fetch_all(&mut *tx).await?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            let id = row.job_id("id")?;
            ids.push(id);
            events.push((id, now, JobState::Deleted, row.count("attempt")?, None));
        }
        events_insert(&mut tx, events).await?;
        let deleted = ids.len() as u64;
        delete_continuations(&mut tx, ids, now).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    async fn jobs_throughput(&self, since: DateTime<Utc>) -> Result<Vec<ThroughputPoint>> {
        let rows = sqlx::query(THROUGHPUT)
            .bind(micros(since))
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ThroughputPoint {
                    minute: from_micros(row.try_get::<i64, _>("minute")? * 60_000_000),
                    succeeded: row.try_get::<i64, _>("succeeded")?.try_into().unwrap_or(0),
                    failed: row.try_get::<i64, _>("failed")?.try_into().unwrap_or(0),
                })
            })
            .collect()
    }

    async fn jobs_count(&self) -> Result<Vec<(JobState, u64)>> {
        let rows = sqlx::query(STATE_COUNTS).fetch_all(&self.reader).await?;
        rows.iter()
            .map(|row| Ok((state(row, "state")?, row.try_get::<i64, _>("n")? as u64)))
            .collect()
    }

    async fn jobs_count_fold(&self) -> Result<u64> {
        Ok(0)
    }

    async fn jobs_waiting(&self, now: DateTime<Utc>, by: WaitingBy) -> Result<Vec<Waiting>> {
        let column = by.column();
        let rows = sqlx::query(&format!(
            "SELECT {column} AS key, COUNT(*) AS n, MIN(run_at) AS oldest FROM jobs_job \
             WHERE state IN ('Enqueued', 'Scheduled') AND run_at <= ?1 \
             GROUP BY {column} ORDER BY {column}",
        ))
        .bind(micros(now))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Waiting {
                    key: row.try_get("key")?,
                    waiting: row.try_get::<i64, _>("n")? as u64,
                    oldest_due: from_micros(row.try_get("oldest")?),
                })
            })
            .collect()
    }

    async fn jobs_count_by_queue(&self, now: DateTime<Utc>) -> Result<Vec<QueueCounts>> {
        // `state IN (…)` is looked up in `jobs_job_state`, one range per state.
        let rows = sqlx::query(QUEUE_COUNTS)
            .bind(micros(now))
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                let count = |column: &str| -> Result<u64> {
                    Ok(u64::try_from(row.try_get::<i64, _>(column)?).unwrap_or(0))
                };
                Ok(QueueCounts {
                    queue: row.try_get("queue")?,
                    waiting: count("waiting")?,
                    scheduled: count("scheduled")?,
                    running: count("running")?,
                    failed: count("failed")?,
                })
            })
            .collect()
    }

    async fn servers_list(&self) -> Result<Vec<ServerInfo>> {
        let rows = sqlx::query("SELECT * FROM jobs_server ORDER BY name, id")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(server_info).collect()
    }

    async fn pause_set(
        &self,
        kind: PauseKind,
        name: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO jobs_pause (kind, name, paused_by, paused_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (kind, name) DO UPDATE SET paused_by = excluded.paused_by, \
                 paused_at = excluded.paused_at",
        )
        .bind(kind.as_str())
        .bind(name)
        .bind(by)
        .bind(micros(at))
        .execute(&mut *self.writer.lock().await?)
        .await?;
        Ok(())
    }

    async fn pause_clear(&self, kind: PauseKind, name: &str) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM jobs_pause WHERE kind = ?1 AND name = ?2")
            .bind(kind.as_str())
            .bind(name)
            .execute(&mut *self.writer.lock().await?)
            .await?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn pauses_list(&self) -> Result<Vec<Paused>> {
        let rows = sqlx::query("SELECT * FROM jobs_pause ORDER BY kind DESC, name")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(paused).collect()
    }

    async fn jobs_prune(
        &self,
        succeeded_before: DateTime<Utc>,
        deleted_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        let ids: Vec<String> = sqlx::query_scalar(PRUNE_PICK)
            .bind(micros(succeeded_before))
            .bind(micros(deleted_before))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        if ids.is_empty() {
            tx.commit().await?;
            return Ok(0);
        }
        let ids = serde_json::to_string(&ids).expect("ids serialize");
        let doomed = "SELECT value FROM json_each(?1)";
        for table in ["jobs_event", "jobs_log", "jobs_step"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE job_id IN ({doomed})"))
                .bind(&ids)
                .execute(&mut *tx)
                .await?;
        }
        // The rows of the batches whose last members and fan-in jobs go now.
        sqlx::query(&format!(
            "DELETE FROM jobs_batch WHERE id IN ( \
                 SELECT batch_id FROM jobs_job WHERE id IN ({doomed}) AND batch_id IS NOT NULL \
                 UNION SELECT id FROM jobs_batch WHERE then_id IN ({doomed}) \
                 UNION SELECT id FROM jobs_batch WHERE on_failure_id IN ({doomed})) \
             AND NOT EXISTS (SELECT 1 FROM jobs_job AS member INDEXED BY jobs_job_batch \
                 WHERE member.batch_id = jobs_batch.id AND member.id NOT IN ({doomed})) \
             AND NOT EXISTS (SELECT 1 FROM jobs_job AS fan_in \
                 WHERE fan_in.id IN (jobs_batch.then_id, jobs_batch.on_failure_id) \
                     AND fan_in.id NOT IN ({doomed}))"
        ))
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query(&format!("DELETE FROM jobs_job WHERE id IN ({doomed})"))
            .bind(&ids)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted)
    }

    async fn jobs_count_prunable(
        &self,
        succeeded: Range<DateTime<Utc>>,
        deleted: Range<DateTime<Utc>>,
    ) -> Result<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM jobs_job INDEXED BY jobs_job_state_updated_id \
                 WHERE state = 'Succeeded' AND updated_at >= ?1 AND updated_at < ?2) \
             + (SELECT count(*) FROM jobs_job INDEXED BY jobs_job_state_updated_id \
                 WHERE state = 'Deleted' AND updated_at >= ?3 AND updated_at < ?4)",
        )
        .bind(micros(succeeded.start))
        .bind(micros(succeeded.end))
        .bind(micros(deleted.start))
        .bind(micros(deleted.end))
        .fetch_one(&self.reader)
        .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

/// The jobs a prune takes, read once: each state's old rows oldest first, ties by id,
/// in the order of the `(state, updated_at, id)` index (migration 29), so a batch reads
/// the rows it takes however many old rows wait, sorts none, and passes no younger row
/// of a lower id (in id order through `(state, id)` it walked those at every batch).
pub(super) const PRUNE_PICK: &str = "SELECT id FROM ( \
         SELECT id, updated_at FROM (SELECT id, updated_at \
             FROM jobs_job INDEXED BY jobs_job_state_updated_id \
             WHERE state = 'Succeeded' AND updated_at < ?1 ORDER BY updated_at, id LIMIT ?3) \
         UNION ALL SELECT id, updated_at FROM (SELECT id, updated_at \
             FROM jobs_job INDEXED BY jobs_job_state_updated_id \
             WHERE state = 'Deleted' AND updated_at < ?2 ORDER BY updated_at, id LIMIT ?3)) \
     ORDER BY updated_at, id LIMIT ?3";

/// Test helpers: the counts as a scan of the whole job table finds them, and an
/// enqueue in a transaction that rolls back.
#[cfg(test)]
impl SqliteStorage {
    pub(crate) async fn jobs_count_scanned(&self) -> Vec<(JobState, u64)> {
        sqlx::query("SELECT state, count(*) AS n FROM jobs_job GROUP BY state ORDER BY state")
            .fetch_all(&self.reader)
            .await
            .unwrap()
            .iter()
            .map(|row| (state(row, "state").unwrap(), row.get::<i64, _>("n") as u64))
            .collect()
    }

    pub(crate) async fn jobs_insert_rolled_back(&self, jobs: &[crate::storage::NewJob]) {
        use sqlx::Connection;
        let mut conn = self.writer.lock().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        super::jobs_insert_with(&mut tx, jobs).await.unwrap();
        tx.rollback().await.unwrap();
    }
}
