//! What the dashboard asks of PostgreSQL beyond running jobs: requeue and delete by
//! filter, throughput over time, the servers.

use std::ops::Range;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, QueryBuilder, Row};

use super::PgStorage;
use super::continuations::cascade;
use super::lifecycle::UNSERVED;
use super::listener::{CHANNEL, DELETIONS};
use super::rows::{SUMMARY_COLUMNS, micros_of, text};
use super::running::logs;
use crate::job::info::{
    JobInfo, JobQuery, JobSummary, PauseKind, Paused, ServerInfo, ThroughputPoint,
};
use crate::storage::rows::{
    history_entry, job_info, paused, requeue_refusal, server_info, state, summary,
};
use crate::storage::stored::REQUEUEABLE;
use crate::storage::{AdminStore, QueueCounts, Requeue, Waiting, WaitingBy};
use crate::{JobId, JobState, Result};

/// Key of the advisory lock that the prunes of old jobs take in turn.
const PRUNE_LOCK: i64 = 0x6a6f_6273_7072_756e; // "jobsprun"

/// A job's history, `$1` its id: its history rows, after the entry of its creation that
/// its row says when no row was written for it (migration 41).
const HISTORY: &str = "\
    SELECT created_at AS at, created_state AS state, 0 AS attempt, NULL::text AS server, \
        NULL::text AS message, NULL::text AS sources, NULL::text AS backtrace, \
        NULL::bigint AS seq \
    FROM jobs_job WHERE id = $1 AND created_state IS NOT NULL \
    UNION ALL \
    SELECT at, state, attempt, server, message, sources::text, backtrace, seq \
    FROM jobs_event WHERE job_id = $1 \
    ORDER BY seq NULLS FIRST";

/// Appends the query's filters (state, name, text search) as `AND …` conditions.
fn push_filters(builder: &mut QueryBuilder<'_, Postgres>, query: &JobQuery) {
    if let Some(state) = query.state {
        builder.push(" AND state = ").push_bind(state.as_str());
    }
    if let Some(name) = &query.name {
        builder.push(" AND name = ").push_bind(name.clone());
    }
    if let Some(label) = &query.label {
        // The label's own rows (migrations 34 and 35), not a scan of every job's labels.
        builder
            .push(" AND id IN (SELECT job_id FROM jobs_job_label WHERE label = ")
            .push_bind(label.clone())
            .push(")");
    }
    if let Some(batch) = query.batch {
        builder.push(" AND batch_id = ").push_bind(batch.as_uuid());
    }
    if let Some(pattern) = query.like_pattern() {
        builder
            .push(" AND (lower(display_name COLLATE \"C\") LIKE ")
            .push_bind(pattern.clone())
            .push(" OR lower(name COLLATE \"C\") LIKE ")
            .push_bind(pattern)
            .push(")");
    }
}

/// The page of `query`, whose label is `label`: the label's rows newest job first, each
/// job read by its id and kept if it passes the other filters, so a page reads about
/// the rows it shows. As `id IN (…)` PostgreSQL merges the label's rows with a walk down
/// the whole primary key instead; `OFFSET 0` keeps the job's read inside the loop.
async fn labelled(pool: &PgPool, label: &str, query: &JobQuery) -> Result<Vec<JobSummary>> {
    let mut select = QueryBuilder::<Postgres>::new(format!(
        "SELECT job.* FROM jobs_job_label AS l CROSS JOIN LATERAL ( \
             SELECT {SUMMARY_COLUMNS} FROM jobs_job WHERE id = l.job_id"
    ));
    let others = JobQuery {
        label: None,
        ..query.clone()
    };
    push_filters(&mut select, &others);
    select
        .push(" OFFSET 0) AS job WHERE l.label = ")
        .push_bind(label.to_owned());
    if let Some(after) = query.after {
        select.push(" AND l.job_id < ").push_bind(after.as_uuid());
    }
    select
        .push(" ORDER BY l.job_id DESC LIMIT ")
        .push_bind(i64::from(query.limit.min(1000)));
    let rows = select.build().fetch_all(pool).await?;
    rows.iter().map(summary).collect()
}

/// Which rows a state change applies to.
enum Target<'a> {
    One(JobId),
    Matching(&'a JobQuery),
}

/// Moves the target rows to `Enqueued` (requeue: not those whose attempt is still live
/// by the database's clock plus `offset`) or `Deleted`, writes their history and
/// notifies the servers (of the new jobs, or of the deletion); returns how many rows
/// changed.
async fn change_state(
    pool: &PgPool,
    target: Target<'_>,
    to: JobState,
    now: DateTime<Utc>,
    offset: chrono::Duration,
) -> Result<u64> {
    // `matched` are the rows the target names; a delete also takes their awaiting
    // continuations, transitively (depth > 0), which are not counted.
    let mut update = QueryBuilder::<Postgres>::new(
        "WITH RECURSIVE matched AS (SELECT id, 0 AS depth FROM jobs_job WHERE ",
    );
    match to {
        JobState::Enqueued => update
            .push(format!(
                "state IN {} AND (owner IS NULL OR lease_until IS NULL \
                 OR lease_until <= clock_timestamp() + ",
                *REQUEUEABLE
            ))
            .push_bind(micros_of(offset))
            .push(" * interval '1 microsecond')"),
        _ => update.push("state <> 'Deleted'"),
    };
    match target {
        Target::One(id) => {
            update.push(" AND id = ").push_bind(id.as_uuid());
        }
        Target::Matching(query) => push_filters(&mut update, query),
    }
    if to == JobState::Deleted {
        update.push(cascade("matched", ", 1"));
    }
    update.push("), changed AS (UPDATE jobs_job SET ");
    match to {
        JobState::Enqueued => {
            update
                .push(
                    "state = 'Enqueued', attempt = 0, rescues = 0, owner = NULL, \
                     lease_until = NULL, ahead = false, run_at = ",
                )
                .push_bind(now)
                .push(", ");
        }
        // A running job keeps its owner, token and lease: the owner learns of the
        // deletion, stops the attempt and renews the lease until it has stopped.
        _ => {
            update.push("state = 'Deleted', ");
        }
    }
    update
        .push("updated_at = ")
        .push_bind(now)
        .push(
            " WHERE id IN (SELECT id FROM matched) RETURNING id, attempt), \
             history AS (INSERT INTO jobs_event (job_id, at, state, attempt) SELECT id, ",
        )
        .push_bind(now)
        .push(", ")
        .push_bind(to.as_str())
        .push(
            ", attempt FROM changed) \
             SELECT (SELECT count(DISTINCT id) FROM matched WHERE depth = 0) AS n",
        );
    let channel = if to == JobState::Enqueued {
        CHANNEL
    } else {
        DELETIONS
    };
    update
        .push(", (SELECT pg_notify(jobs_channel(")
        .push_bind(channel)
        .push("), '') WHERE EXISTS (SELECT 1 FROM changed)) AS notified");
    let row = update.build().fetch_one(pool).await?;
    Ok(row.try_get::<i64, _>("n")?.try_into().unwrap_or(0))
}

/// The counts of [`AdminStore::jobs_count`]: the counter rows plus the changes the
/// triggers appended since the last fold, never the job table itself. One statement,
/// one snapshot: a fold (which deletes changes and adds them to the counter rows in one
/// transaction) is seen whole or not at all.
pub(super) const STATE_COUNTS: &str = "SELECT state, sum(n)::bigint AS n FROM ( \
         SELECT state, n FROM jobs_state_count \
         UNION ALL \
         SELECT state, n FROM jobs_state_delta \
     ) AS counted \
     GROUP BY state HAVING sum(n) <> 0 ORDER BY state";

impl AdminStore for PgStorage {
    async fn unique_prune(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
        self.prune_unique(before, limit).await
    }

    async fn job_get(&self, id: JobId) -> Result<Option<JobInfo>> {
        let Some(row) = sqlx::query(&format!(
            "SELECT id, name, display_name, payload::text AS payload, state, queue, priority, \
                 attempt, max_retries, run_at, owner, last_error, created_at, updated_at, \
                 labels::text AS labels, parent_id, batch_id, progress_done, progress_total, result, \
                 wait_name, wait_key, {UNSERVED} AS waiting_for_server \
             FROM jobs_job WHERE id = $1",
        ))
        .bind(id.as_uuid())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let events = sqlx::query(HISTORY)
            .bind(id.as_uuid())
            .fetch_all(&self.pool)
            .await?;
        let history = events
            .iter()
            .map(history_entry)
            .collect::<Result<Vec<_>>>()?;
        let logs = logs(&self.pool, id).await?;
        Ok(Some(job_info(&row, id, history, logs)?))
    }

    async fn jobs_list(&self, query: &JobQuery) -> Result<Vec<JobSummary>> {
        if let Some(label) = &query.label {
            return labelled(&self.pool, label, query).await;
        }
        let mut select = QueryBuilder::<Postgres>::new(format!(
            "SELECT {SUMMARY_COLUMNS} FROM jobs_job WHERE true"
        ));
        // A page of one name (and no state) is read in the order of `jobs_job_name`,
        // under a range condition on the name: with `name = $1` PostgreSQL drops the
        // name from the order, walks the primary key down from the newest job expecting
        // the name's jobs spread evenly among the others, and reads every newer job of
        // other names first.
        let by_name = query.name.as_ref().filter(|_| query.state.is_none());
        match by_name {
            Some(name) => {
                let others = JobQuery {
                    name: None,
                    ..query.clone()
                };
                push_filters(&mut select, &others);
                select
                    .push(" AND name >= ")
                    .push_bind(name.clone())
                    .push(" AND name <= ")
                    .push_bind(name.clone());
            }
            None => push_filters(&mut select, query),
        }
        if let Some(after) = query.after {
            select.push(" AND id < ").push_bind(after.as_uuid());
        }
        let order = if by_name.is_some() {
            "name DESC, id DESC"
        } else {
            "id DESC"
        };
        select
            .push(format!(" ORDER BY {order} LIMIT "))
            .push_bind(i64::from(query.limit.min(1000)));
        let rows = select.build().fetch_all(&self.pool).await?;
        rows.iter().map(summary).collect()
    }

    async fn job_delete(&self, id: JobId, now: DateTime<Utc>) -> Result<bool> {
        // The final SELECT reads the statement's snapshot, from before the update: it
        // finds the row whether or not this statement deleted it. Servers in other
        // processes hear of the deletion on commit.
        let cascade = cascade("doomed", "");
        let exists: bool = sqlx::query_scalar(&format!(
            "WITH RECURSIVE doomed AS ( \
                 SELECT id FROM jobs_job WHERE id = $1 AND state <> 'Deleted'{cascade} \
             ), deleted AS ( \
                 UPDATE jobs_job SET state = 'Deleted', updated_at = $2 \
                 WHERE id IN (SELECT id FROM doomed) RETURNING id, attempt \
             ), history AS ( \
                 INSERT INTO jobs_event (job_id, at, state, attempt) \
                 SELECT id, $2, 'Deleted', attempt FROM deleted \
             ) \
             SELECT EXISTS (SELECT 1 FROM deleted) OR EXISTS (SELECT 1 FROM jobs_job WHERE id = $1), \
                 (SELECT pg_notify(jobs_channel($3), '') WHERE EXISTS (SELECT 1 FROM deleted)) AS notified",
        ))
        .bind(id.as_uuid())
        .bind(now)
        .bind(DELETIONS)
        .fetch_one(&self.pool)
        .await?;
        Ok(exists)
    }

    async fn job_requeue(
        &self,
        id: JobId,
        now: DateTime<Utc>,
        offset: chrono::Duration,
    ) -> Result<Requeue> {
        let target = Target::One(id);
        if change_state(&self.pool, target, JobState::Enqueued, now, offset).await? > 0 {
            return Ok(Requeue::Requeued);
        }
        // Not moved: say why, as the row is now.
        let row = sqlx::query("SELECT state, owner FROM jobs_job WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await?;
        requeue_refusal(row.as_ref())
    }

    async fn jobs_requeue_matching(
        &self,
        query: &JobQuery,
        now: DateTime<Utc>,
        offset: chrono::Duration,
    ) -> Result<u64> {
        let target = Target::Matching(query);
        change_state(&self.pool, target, JobState::Enqueued, now, offset).await
    }

    async fn jobs_delete_matching(&self, query: &JobQuery, now: DateTime<Utc>) -> Result<u64> {
        let target = Target::Matching(query);
        let none = chrono::Duration::zero();
        change_state(&self.pool, target, JobState::Deleted, now, none).await
    }

    async fn jobs_throughput(&self, since: DateTime<Utc>) -> Result<Vec<ThroughputPoint>> {
        let rows = sqlx::query(
            "SELECT date_trunc('minute', at) AS minute, \
                 count(*) FILTER (WHERE state = 'Succeeded') AS succeeded, \
                 count(*) FILTER (WHERE state <> 'Succeeded') AS failed \
             FROM jobs_event \
             WHERE at >= $1 AND (state = 'Succeeded' OR message IS NOT NULL) \
                 AND state <> 'Enqueued' \
             GROUP BY 1 ORDER BY 1",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ThroughputPoint {
                    minute: row.try_get("minute")?,
                    succeeded: row.try_get::<i64, _>("succeeded")?.try_into().unwrap_or(0),
                    failed: row.try_get::<i64, _>("failed")?.try_into().unwrap_or(0),
                })
            })
            .collect()
    }

    async fn jobs_count(&self) -> Result<Vec<(JobState, u64)>> {
        let rows = sqlx::query(STATE_COUNTS).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let n: i64 = row.try_get("n")?;
                Ok((state(row, "state")?, u64::try_from(n).unwrap_or(0)))
            })
            .collect()
    }

    async fn jobs_count_fold(&self) -> Result<u64> {
        // Several servers may fold at once: a delta row is deleted by one of them only
        // (the others wait for its lock, then skip it), and the counter rows are taken
        // in the order of their state, so two folds never deadlock.
        let folded: i64 = sqlx::query_scalar(
            "WITH folded AS (DELETE FROM jobs_state_delta RETURNING state, n), \
             summed AS (SELECT state, sum(n)::bigint AS n, count(*) AS changes FROM folded \
                 GROUP BY state), \
             added AS (INSERT INTO jobs_state_count (state, n) \
                 SELECT state, n FROM summed ORDER BY state \
                 ON CONFLICT (state) DO UPDATE SET n = jobs_state_count.n + excluded.n) \
             SELECT coalesce(sum(changes), 0)::bigint FROM summed",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(folded).unwrap_or(0))
    }

    async fn jobs_waiting(&self, now: DateTime<Utc>, by: WaitingBy) -> Result<Vec<Waiting>> {
        let column = by.column();
        let rows = sqlx::query(&format!(
            "SELECT {column} AS key, count(*) AS n, min(run_at) AS oldest FROM jobs_job \
             WHERE state IN ('Enqueued', 'Scheduled') AND run_at <= $1 \
             GROUP BY {column} ORDER BY {column}",
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let n: i64 = row.try_get("n")?;
                Ok(Waiting {
                    key: row.try_get("key")?,
                    waiting: u64::try_from(n).unwrap_or(0),
                    oldest_due: row.try_get("oldest")?,
                })
            })
            .collect()
    }

    async fn jobs_count_by_queue(&self, now: DateTime<Utc>) -> Result<Vec<QueueCounts>> {
        let rows = sqlx::query(
            "SELECT queue, \
                 count(*) FILTER (WHERE state = 'Enqueued' \
                     OR (state = 'Scheduled' AND run_at <= $1)) AS waiting, \
                 count(*) FILTER (WHERE state = 'Scheduled' AND run_at > $1) AS scheduled, \
                 count(*) FILTER (WHERE state = 'Processing') AS running, \
                 count(*) FILTER (WHERE state = 'Failed') AS failed \
             FROM jobs_job \
             WHERE state IN ('Enqueued', 'Scheduled', 'Processing', 'Failed') \
             GROUP BY queue ORDER BY queue",
        )
        .bind(now)
        .fetch_all(&self.pool)
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
            .fetch_all(&self.pool)
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
            "INSERT INTO jobs_pause (kind, name, paused_by, paused_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (kind, name) DO UPDATE SET paused_by = excluded.paused_by, \
                 paused_at = excluded.paused_at",
        )
        .bind(kind.as_str())
        .bind(text(name))
        .bind(text(by))
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn pause_clear(&self, kind: PauseKind, name: &str) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM jobs_pause WHERE kind = $1 AND name = $2")
            .bind(kind.as_str())
            .bind(text(name))
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn pauses_list(&self) -> Result<Vec<Paused>> {
        let rows = sqlx::query("SELECT * FROM jobs_pause ORDER BY kind DESC, name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(paused).collect()
    }

    async fn jobs_prune(
        &self,
        succeeded_before: DateTime<Utc>,
        deleted_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64> {
        // SKIP LOCKED: rows another server is pruning right now are its business. Prunes
        // take turns, so that of two that take a batch's last rows, the second sees the
        // first's deletions and deletes the batch's row. Each state's old rows oldest
        // first, ties by id, in the order of the `(state, updated_at, id)` index
        // (migration 37), which serves both the filter and the order: the plan reads
        // `limit` rows whatever the statistics say (an `OR` of both states in id order,
        // planned for the few rows stale statistics promised, read every prunable row
        // to sort them).
        let mut tx = super::begin(&self.pool).await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PRUNE_LOCK)
            .execute(&mut *tx)
            .await?;
        let deleted: i64 = sqlx::query_scalar(
            "WITH succeeded AS ( \
                 SELECT id, batch_id, updated_at FROM jobs_job \
                 WHERE state = 'Succeeded' AND updated_at < $1 \
                 ORDER BY updated_at, id LIMIT $3 \
                 FOR UPDATE SKIP LOCKED \
             ), deleted AS ( \
                 SELECT id, batch_id, updated_at FROM jobs_job \
                 WHERE state = 'Deleted' AND updated_at < $2 \
                 ORDER BY updated_at, id LIMIT $3 \
                 FOR UPDATE SKIP LOCKED \
             ), doomed AS MATERIALIZED ( \
                 SELECT id, batch_id FROM ( \
                     SELECT * FROM succeeded UNION ALL SELECT * FROM deleted \
                 ) AS old ORDER BY updated_at, id LIMIT $3 \
             ), history AS ( \
                 DELETE FROM jobs_event WHERE job_id IN (SELECT id FROM doomed) \
             ), logs AS ( \
                 DELETE FROM jobs_log WHERE job_id IN (SELECT id FROM doomed) \
             ), steps AS ( \
                 DELETE FROM jobs_step WHERE job_id IN (SELECT id FROM doomed) \
             ), batches AS ( \
                 DELETE FROM jobs_batch AS batch WHERE batch.id IN ( \
                     SELECT batch_id FROM doomed WHERE batch_id IS NOT NULL \
                     UNION SELECT id FROM jobs_batch WHERE then_id IN (SELECT id FROM doomed) \
                     UNION SELECT id FROM jobs_batch \
                         WHERE on_failure_id IN (SELECT id FROM doomed)) \
                 AND NOT EXISTS (SELECT 1 FROM jobs_job AS member \
                     WHERE member.batch_id = batch.id \
                         AND member.id NOT IN (SELECT id FROM doomed)) \
                 AND NOT EXISTS (SELECT 1 FROM jobs_job AS fan_in \
                     WHERE fan_in.id IN (batch.then_id, batch.on_failure_id) \
                         AND fan_in.id NOT IN (SELECT id FROM doomed)) \
             ), jobs AS ( \
                 DELETE FROM jobs_job WHERE id IN (SELECT id FROM doomed) RETURNING 1 \
             ) \
             SELECT count(*) FROM jobs",
        )
        .bind(succeeded_before)
        .bind(deleted_before)
        .bind(i64::from(limit))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(u64::try_from(deleted).unwrap_or(0))
    }

    async fn jobs_count_prunable(
        &self,
        succeeded: Range<DateTime<Utc>>,
        deleted: Range<DateTime<Utc>>,
    ) -> Result<u64> {
        // Row comparisons, a range of `(state, updated_at, id)` that the `(state, id)`
        // index cannot serve: whatever the statistics say, the count reads the range.
        let count: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM jobs_job \
                 WHERE (state, updated_at) >= ('Succeeded', $1) \
                     AND (state, updated_at) < ('Succeeded', $2)) \
             + (SELECT count(*) FROM jobs_job \
                 WHERE (state, updated_at) >= ('Deleted', $3) \
                     AND (state, updated_at) < ('Deleted', $4))",
        )
        .bind(succeeded.start)
        .bind(succeeded.end)
        .bind(deleted.start)
        .bind(deleted.end)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

/// Test helpers: the counts as a scan of the whole job table finds them, and an
/// enqueue in a transaction that rolls back.
#[cfg(test)]
impl PgStorage {
    pub(crate) async fn jobs_count_scanned(&self) -> Vec<(JobState, u64)> {
        sqlx::query("SELECT state, count(*) AS n FROM jobs_job GROUP BY state ORDER BY state")
            .fetch_all(&self.pool)
            .await
            .unwrap()
            .iter()
            .map(|row| {
                let n: i64 = row.get("n");
                (state(row, "state").unwrap(), n as u64)
            })
            .collect()
    }

    pub(crate) async fn jobs_insert_rolled_back(&self, jobs: &[crate::storage::NewJob]) {
        let mut tx = self.pool.begin().await.unwrap();
        super::jobs_insert_with(&mut tx, jobs).await.unwrap();
        tx.rollback().await.unwrap();
    }
}
