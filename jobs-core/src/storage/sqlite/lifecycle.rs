//! A job's life on SQLite: insert, claim, results, release, and what the server polls for.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::continuations::release_continuations;
use super::rows::{from_micros, micros};
use super::signals::waits_resume;
use super::{ROWS_PER_INSERT, SqliteStorage, begin, padded};
use crate::storage::rates::window_ms;
use crate::storage::rows::{StoredRow, expired_job};
use crate::storage::signals::kept_since;
use crate::storage::stored::UNHELD_MESSAGE;
use crate::storage::stored::{failure_summary, stored_failure};
use crate::storage::{
    ClaimRequest, ClaimedJob, Completion, ExpiredJob, Fence, LifecycleStore, NewJob, Outcome,
};
use crate::{JobId, JobState, Result};

/// Whether the `jobs_job` row waits while servers run and none registers its name (a
/// server row without names, of an older release, counts as registering every name).
pub(super) const UNSERVED: &str = "(jobs_job.state IN ('Enqueued', 'Scheduled') \
     AND EXISTS (SELECT 1 FROM jobs_server) \
     AND NOT EXISTS (SELECT 1 FROM jobs_server AS server WHERE server.jobs IS NULL \
         OR EXISTS (SELECT 1 FROM json_each(server.jobs) WHERE value = jobs_job.name)))";

/// `level`: the priorities of the runnable jobs, highest first, each found by one seek
/// of the runnable index (ordered by priority, then `run_at`), for reads that then seek
/// each priority's jobs by `run_at` instead of reading every runnable row.
macro_rules! runnable_priorities {
    () => {
        "WITH RECURSIVE level (priority) AS ( \
             SELECT (SELECT priority FROM jobs_job INDEXED BY jobs_job_runnable \
                 WHERE state IN ('Enqueued', 'Scheduled') ORDER BY priority DESC LIMIT 1) \
             UNION ALL \
             SELECT (SELECT priority FROM jobs_job INDEXED BY jobs_job_runnable \
                 WHERE state IN ('Enqueued', 'Scheduled') AND priority < level.priority \
                 ORDER BY priority DESC LIMIT 1) \
             FROM level WHERE level.priority IS NOT NULL) "
    };
}

/// The earliest `run_at` of the runnable jobs, read by every idle server to time its
/// sleep: the first entry of each priority in the runnable index is that priority's
/// earliest job. A plain `MIN(run_at)` read every runnable row from the table (tens of
/// milliseconds at 100,000 waiting jobs).
pub(super) const NEXT_RUN_AT: &str = concat!(
    runnable_priorities!(),
    "SELECT MIN((SELECT run_at FROM jobs_job INDEXED BY jobs_job_runnable \
         WHERE state IN ('Enqueued', 'Scheduled') AND priority = level.priority \
         ORDER BY run_at LIMIT 1)) \
     FROM level WHERE level.priority IS NOT NULL"
);

/// The update of [`LifecycleStore::jobs_fail_unserved`]: `?1` now, `?2` the note after
/// the name, `?3` the due time before which a job counts, `?4` the most it fails. It
/// reads only the runnable jobs due before `?3`, by priority (`CROSS JOIN` keeps the
/// priorities the outer loop, which SQLite's planner does not choose on its own); it
/// used to read every runnable job from the table (25–33 ms at 100,000 waiting jobs,
/// under the write lock, at every maintenance round of a server that has run for
/// `fail_unserved_after`).
pub(super) fn unserved_update() -> String {
    format!(
        "UPDATE jobs_job SET state = 'Failed', updated_at = ?1, \
             last_error = 'no server registers `' || name || '`' || ?2 \
         WHERE id IN ({priorities}\
             SELECT jobs_job.id FROM level \
                 CROSS JOIN jobs_job INDEXED BY jobs_job_runnable \
                     ON jobs_job.priority = level.priority \
             WHERE level.priority IS NOT NULL \
                 AND jobs_job.state IN ('Enqueued', 'Scheduled') \
                 AND jobs_job.run_at < ?3 AND {UNSERVED} LIMIT ?4) \
         RETURNING id, attempt, last_error",
        priorities = runnable_priorities!()
    )
}

/// Appends one history row per job inside `tx`.
pub(super) async fn events_insert(
    tx: &mut sqlx::SqliteConnection,
    events: impl IntoIterator<Item = (JobId, DateTime<Utc>, JobState, u32, Option<&str>)>,
) -> Result<()> {
    let events: Vec<_> = events.into_iter().collect();
    for chunk in events.chunks(ROWS_PER_INSERT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO jobs_event (job_id, at, state, attempt, server) ",
        );
        insert.push_values(chunk, |mut row, (id, at, state, attempt, server)| {
            row.push_bind(id.to_string())
                .push_bind(micros(*at))
                .push_bind(state.as_str())
                .push_bind(i64::from(*attempt))
                .push_bind(server.map(str::to_owned));
        });
        insert.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// Appends one history row per job inside `tx`, each with `message`.
pub(super) async fn noted_events_insert(
    tx: &mut sqlx::SqliteConnection,
    events: &[(JobId, u32)],
    at: DateTime<Utc>,
    state: JobState,
    server: &str,
    message: &str,
) -> Result<()> {
    for chunk in events.chunks(ROWS_PER_INSERT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO jobs_event (job_id, at, state, attempt, server, message) ",
        );
        insert.push_values(chunk, |mut row, (id, attempt)| {
            row.push_bind(id.to_string())
                .push_bind(micros(at))
                .push_bind(state.as_str())
                .push_bind(i64::from(*attempt))
                .push_bind(server.to_owned())
                .push_bind(message.to_owned());
        });
        insert.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// Claims as a JSON array of `[id, token]` pairs, for `json_each`.
pub(super) fn fences_json(fences: &[Fence]) -> String {
    let pairs: Vec<(String, i64)> = fences
        .iter()
        .map(|fence| (fence.id.to_string(), fence.token))
        .collect();
    serde_json::to_string(&pairs).expect("pairs of a string and a number serialize")
}

/// Ids as a JSON array, for `json_each`.
pub(super) fn ids_json(ids: &[JobId]) -> String {
    serde_json::to_string(&ids.iter().map(JobId::to_string).collect::<Vec<_>>())
        .expect("strings serialize")
}

/// The rows of a `[id, token]` JSON array bound in place of `?N`.
pub(super) fn fence_rows(parameter: &str) -> String {
    format!(
        "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each({parameter})"
    )
}

/// Runs a state-changing `UPDATE` and records `state` in the history of each row it
/// changed; returns how many.
pub(super) async fn finish_update(
    tx: &mut sqlx::SqliteConnection,
    mut update: QueryBuilder<'_, Sqlite>,
    now: DateTime<Utc>,
    state: JobState,
) -> Result<u64> {
    update.push(" RETURNING id, attempt");
    let rows = update.build().fetch_all(&mut *tx).await?;
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        events.push((row.job_id("id")?, now, state, row.count("attempt")?, None));
    }
    events_insert(tx, events).await?;
    Ok(rows.len() as u64)
}

/// Inserts jobs on `conn`; an id that exists already is skipped (dedupe). Each row
/// says its own creation (`created_at`, `created_state`: migration 32), from which
/// reading the history derives its first entry, so a deduped enqueue leaves no trace
/// and a new job writes no history row. Used by the storage and by transactional
/// enqueue, inside the caller's transaction.
pub(crate) async fn jobs_insert_with(
    conn: &mut sqlx::SqliteConnection,
    jobs: &[NewJob],
) -> Result<()> {
    for chunk in jobs.chunks(ROWS_PER_INSERT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO jobs_job (id, name, display_name, payload, state, queue, priority, \
             run_at, max_retries, recurring_id, parent_id, on_failure, labels, created_at, \
             updated_at, trace_context, batch_id, concurrency_key, concurrency, rate_count, \
             rate_window_ms, created_state) ",
        );
        insert.push_values(chunk, |mut row, job| {
            let concurrency = job.concurrency.as_ref();
            let rate = concurrency.and_then(|concurrency| concurrency.rate);
            row.push_bind(job.id.to_string())
                .push_bind(&job.name)
                .push_bind(&job.display_name)
                .push_bind(&job.payload)
                .push_bind(job.state.as_str())
                .push_bind(&job.queue)
                .push_bind(job.priority)
                .push_bind(micros(job.run_at))
                .push_bind(job.max_retries.map(i64::from))
                .push_bind(&job.recurring_id)
                .push_bind(job.parent_id.map(|id| id.to_string()))
                .push_bind(job.on_failure)
                .push_bind(job.labels_json())
                .push_bind(micros(job.created_at))
                .push_bind(micros(job.created_at))
                .push_bind(&job.trace_context)
                .push_bind(job.batch_id.map(|id| id.to_string()))
                .push_bind(concurrency.map(|concurrency| concurrency.key.clone()))
                .push_bind(concurrency.and_then(|concurrency| concurrency.limit.map(i64::from)))
                .push_bind(rate.map(|rate| i64::from(rate.count)))
                .push_bind(rate.map(window_ms))
                .push_bind(job.state.as_str());
        });
        // Ids made for this insert cannot clash (see `NewJob::fresh_id`).
        if !chunk.iter().all(|job| job.fresh_id) {
            insert.push(" ON CONFLICT (id) DO NOTHING");
        }
        insert.build().execute(&mut *conn).await?;
    }
    Ok(())
}

impl LifecycleStore for SqliteStorage {
    async fn jobs_admit(&self, jobs: &[NewJob]) -> Result<Vec<crate::storage::Admitted>> {
        self.admit(jobs).await
    }

    async fn jobs_insert(&self, jobs: &[NewJob]) -> Result<()> {
        if jobs.len() <= ROWS_PER_INSERT {
            // One statement, atomic on its own (its trigger included): a transaction
            // around it would only add two round trips to SQLite's thread.
            return jobs_insert_with(&mut *self.writer.lock().await?, jobs).await;
        }
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        jobs_insert_with(&mut tx, jobs).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn jobs_claim(&self, request: ClaimRequest<'_>) -> Result<Vec<ClaimedJob>> {
        super::claim::jobs_claim(self, request).await
    }

    async fn jobs_complete(&self, completions: &[Completion]) -> Result<()> {
        if completions.is_empty() {
            return Ok(());
        }
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        // The jobs whose fence held: whether any continuation awaits them, and the
        // start their result's row says (migration 33).
        let mut finished = HashMap::with_capacity(completions.len());
        for chunk in completions.chunks(ROWS_PER_INSERT) {
            let mut update = QueryBuilder::<Sqlite>::new(
                "WITH done (id, owner, token, state, run_at, last_error, at, uncharged, \
                     rescued, result, wait_name, wait_key) AS (",
            );
            update.push_values(padded(chunk), |mut row, completion| {
                let Some(completion) = completion else {
                    for _ in 0..12 {
                        row.push_bind(None::<i64>);
                    }
                    return;
                };
                let (state, run_at, failure) = completion.outcome.ending();
                row.push_bind(completion.id.to_string())
                    .push_bind(completion.owner.as_str())
                    .push_bind(completion.token)
                    .push_bind(state.as_str())
                    .push_bind(run_at.map(micros))
                    .push_bind(failure.map(failure_summary))
                    .push_bind(micros(completion.at))
                    .push_bind(i64::from(completion.outcome.uncharged()))
                    .push_bind(i64::from(completion.outcome.rescued()))
                    .push_bind(completion.result.as_deref())
                    .push_bind(completion.outcome.wait().map(|wait| wait.name.as_str()))
                    .push_bind(completion.outcome.wait().map(|wait| wait.key.as_str()));
            });
            update.push(
                ") UPDATE jobs_job SET state = done.state, \
                     run_at = COALESCE(done.run_at, jobs_job.run_at), \
                     last_error = COALESCE(done.last_error, jobs_job.last_error), \
                     attempt = jobs_job.attempt - done.uncharged, \
                     rescues = jobs_job.rescues + done.rescued, \
                     result = CASE WHEN done.state = 'Succeeded' THEN done.result \
                         ELSE jobs_job.result END, \
                     owner = NULL, lease_until = NULL, ahead = 0, updated_at = done.at, \
                     wait_name = done.wait_name, wait_key = done.wait_key, \
                     started_at = CASE WHEN done.uncharged = 0 \
                         AND jobs_job.started_token = jobs_job.token \
                         THEN jobs_job.started_at END, \
                     started_token = CASE WHEN done.uncharged = 0 THEN NULL \
                         ELSE jobs_job.started_token END, \
                     succeeded_by = CASE WHEN done.state = 'Succeeded' THEN done.owner END \
                 FROM done WHERE jobs_job.id = done.id AND jobs_job.owner = done.owner \
                     AND jobs_job.token = done.token AND jobs_job.state = 'Processing' \
                 RETURNING id, started_at, EXISTS (SELECT 1 FROM jobs_job AS child \
                     WHERE child.parent_id = jobs_job.id AND child.state = 'Awaiting') AS awaited",
            );
            // A charged attempt this build claimed: its start goes into the result's
            // row (the set `started_at`), or stays in the job row with a success
            // (migration 34), and with `started_token` cleared the trigger writes no
            // row of it. An uncharged one (the attempt did not count) or an older
            // build's claim: the trigger wrote or writes its row.
            for row in update.build().fetch_all(&mut *tx).await? {
                finished.insert(
                    row.job_id("id")?,
                    (
                        row.try_get::<bool, _>("awaited")?,
                        row.try_get::<Option<i64>, _>("started_at")?,
                    ),
                );
            }
        }
        // Results that failed the fence (deleted, released or rescued meanwhile) leave no
        // history; a job's result counts once even if it came twice.
        let recorded: Vec<(&Completion, (bool, Option<i64>))> = completions
            .iter()
            .filter_map(|completion| Some((completion, finished.remove(&completion.id)?)))
            .collect();
        // A success is said by the job row (`succeeded_by`, migration 34): only the
        // other results store a row, which holds what the job row cannot (the error,
        // the note, the attempt the next one replaces).
        let stored: Vec<_> = recorded
            .iter()
            .filter(|(completion, _)| !matches!(completion.outcome, Outcome::Succeeded))
            .collect();
        for chunk in stored.chunks(ROWS_PER_INSERT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO jobs_event (job_id, at, state, attempt, server, message, sources, \
                     backtrace, started_at) \
                 SELECT * FROM (",
            );
            insert.push_values(padded(chunk), |mut row, recorded| {
                let Some((completion, (_, started_at))) = recorded.copied() else {
                    for _ in 0..9 {
                        row.push_bind(None::<i64>);
                    }
                    return;
                };
                let (state, _, failure) = completion.outcome.ending();
                let stored = failure.map(stored_failure);
                let (message, sources, backtrace) = match stored {
                    Some(stored) => (Some(stored.message), Some(stored.sources), stored.backtrace),
                    None => (None, None, None),
                };
                let message = message.or_else(|| completion.outcome.note().map(str::to_owned));
                let attempt = completion.attempt - u32::from(completion.outcome.uncharged());
                row.push_bind(completion.id.to_string())
                    .push_bind(micros(completion.at))
                    .push_bind(state.as_str())
                    .push_bind(i64::from(attempt))
                    .push_bind(completion.owner.as_str())
                    .push_bind(message)
                    .push_bind(sources)
                    .push_bind(backtrace)
                    .push_bind(*started_at);
            });
            insert.push(") WHERE column1 IS NOT NULL");
            insert.build().execute(&mut *tx).await?;
        }
        // A wait stored now finds the event sent while its job was still running.
        for (completion, _) in &recorded {
            if let Some(wait) = completion.outcome.wait() {
                waits_resume(&mut tx, wait, kept_since(completion.at), completion.at).await?;
            }
        }
        let mut awaited = (Vec::new(), Vec::new());
        let mut now = None;
        for (completion, (has_continuations, _)) in recorded {
            now = now.max(Some(completion.at));
            if !has_continuations {
                continue;
            }
            match completion.outcome {
                Outcome::Succeeded => awaited.0.push(completion.id),
                Outcome::Failed { .. } => awaited.1.push(completion.id),
                Outcome::Retry { .. }
                | Outcome::Orphaned { .. }
                | Outcome::NotStarted { .. }
                | Outcome::Sleeping { .. } => {}
            }
        }
        if let Some(now) = now {
            release_continuations(&mut tx, &awaited.0, &awaited.1, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn jobs_release(
        &self,
        owner: &str,
        only: Option<&[Fence]>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let only = only.map(fences_json);
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        let rows = sqlx::query(&format!(
            "UPDATE jobs_job SET state = 'Enqueued', attempt = attempt - 1, owner = NULL, \
                 lease_until = NULL, ahead = 0, run_at = ?2, updated_at = ?2 \
             WHERE owner = ?1 AND state = 'Processing' \
                 AND (?3 IS NULL OR (id, token) IN ({})) \
             RETURNING id, attempt",
            fence_rows("?3")
        ))
        .bind(owner)
        .bind(micros(now))
        .bind(only)
        .fetch_all(&mut *tx)
        .await?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            events.push((
                row.job_id("id")?,
                now,
                JobState::Enqueued,
                row.count("attempt")?,
                Some(owner),
            ));
        }
        events_insert(&mut tx, events).await?;
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    async fn jobs_release_unheld(
        &self,
        owner: &str,
        held: &[JobId],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        let rows = sqlx::query(
            "UPDATE jobs_job SET state = 'Enqueued', attempt = attempt - 1, owner = NULL, \
                 lease_until = NULL, ahead = 0, run_at = ?2, updated_at = ?2 \
             WHERE owner = ?1 AND state = 'Processing' \
                 AND id NOT IN (SELECT value FROM json_each(?3)) \
             RETURNING id, attempt",
        )
        .bind(owner)
        .bind(micros(now))
        .bind(ids_json(held))
        .fetch_all(&mut *tx)
        .await?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            events.push((row.job_id("id")?, row.count("attempt")?));
        }
        noted_events_insert(
            &mut tx,
            &events,
            now,
            JobState::Enqueued,
            owner,
            UNHELD_MESSAGE,
        )
        .await?;
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    async fn jobs_stopped(&self, stopped: &[Fence]) -> Result<u64> {
        if stopped.is_empty() {
            return Ok(0);
        }
        Ok(sqlx::query(&format!(
            "UPDATE jobs_job SET owner = NULL, lease_until = NULL \
             WHERE state = 'Deleted' AND (id, token) IN ({})",
            fence_rows("?1")
        ))
        .bind(fences_json(stopped))
        .execute(&mut *self.writer.lock().await?)
        .await?
        .rows_affected())
    }

    async fn jobs_expired(
        &self,
        now: DateTime<Utc>,
        _offset: chrono::Duration,
        limit: u32,
    ) -> Result<Vec<ExpiredJob>> {
        let rows = sqlx::query(
            "SELECT id, owner, token, attempt, ahead, rescues FROM jobs_job \
             WHERE state = 'Processing' AND lease_until < ? LIMIT ?",
        )
        .bind(micros(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *self.writer.lock().await?)
        .await?;
        rows.iter().map(expired_job).collect()
    }

    async fn jobs_next_run_at(&self) -> Result<Option<DateTime<Utc>>> {
        let next: Option<i64> = sqlx::query_scalar(NEXT_RUN_AT)
            .fetch_one(&self.reader)
            .await?;
        Ok(next.map(from_micros))
    }

    async fn jobs_deleted_among(&self, ids: &[JobId]) -> Result<Vec<JobId>> {
        let mut deleted = Vec::new();
        for chunk in ids.chunks(ROWS_PER_INSERT) {
            let mut select = QueryBuilder::<Sqlite>::new(
                "SELECT id FROM jobs_job WHERE state = 'Deleted' AND id IN (",
            );
            let mut list = select.separated(", ");
            for id in chunk {
                list.push_bind(id.to_string());
            }
            select.push(")");
            for row in select.build().fetch_all(&self.reader).await? {
                deleted.push(row.job_id("id")?);
            }
        }
        Ok(deleted)
    }

    async fn jobs_fail_unserved(
        &self,
        due_before: DateTime<Utc>,
        now: DateTime<Utc>,
        server: &str,
        note: &str,
        limit: u32,
    ) -> Result<u64> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        let failed = sqlx::query(&unserved_update())
            .bind(micros(now))
            .bind(note)
            .bind(micros(due_before))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        let mut ids = Vec::with_capacity(failed.len());
        for row in &failed {
            let id = row.job_id("id")?;
            let message: String = row.try_get("last_error")?;
            sqlx::query(
                "INSERT INTO jobs_event (job_id, at, state, attempt, server, message) \
                 VALUES (?, ?, 'Failed', ?, ?, ?)",
            )
            .bind(id.to_string())
            .bind(micros(now))
            .bind(i64::from(row.count("attempt")?))
            .bind(server)
            .bind(message)
            .execute(&mut *tx)
            .await?;
            ids.push(id);
        }
        release_continuations(&mut tx, &[], &ids, now).await?;
        tx.commit().await?;
        Ok(ids.len() as u64)
    }
}
