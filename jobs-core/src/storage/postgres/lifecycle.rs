//! A job's life on PostgreSQL: insert, claim, results, release, and what the server
//! polls for.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::PgStorage;
use super::continuations::RELEASE;
use super::listener::CHANNEL;
use super::rows::{fence_arrays, int, micros_of, text};
use super::signals::{lock_waits, waits_resume};
use crate::storage::rates::window_ms;
use crate::storage::rows::expired_job;
use crate::storage::signals::kept_since;
use crate::storage::stored::{UNHELD_MESSAGE, failure_summary, stored_failure};
use crate::storage::{
    ClaimRequest, ClaimedJob, Completion, EventWait, ExpiredJob, Fence, LifecycleStore, NewJob,
};
use crate::{JobId, Result};

/// The statements that insert jobs, count them by state (migration 42: the trigger
/// counts only rows without `created_state`) and notify listeners (a job's row says its
/// creation, `created_state`, migration 41: no history row is written for it): from
/// arrays through `UNNEST`, or one job from scalars (which PostgreSQL plans and runs
/// faster), each with or without `ON CONFLICT (id) DO NOTHING`. Parameters: $1 id,
/// $2 name, $3 display name, $4 payload, $5 state, $6 queue,
/// $7 priority, $8 run at, $9 retries, $10 created at, $11 channel, $12 recurring id,
/// $13 parent id, $14 on failure, $15 labels, $16 trace context, $17 batch id,
/// $18 concurrency key, $19 concurrency, $20 a key's rate count, $21 its window in ms.
static INSERTS: LazyLock<[String; 4]> = LazyLock::new(|| {
    let arrays = "SELECT id, name, display_name, payload::json, state, queue, priority, \
             run_at, max_retries, recurring_id, parent_id, on_failure, labels::json, \
             created_at, created_at, trace_context, batch_id, concurrency_key, concurrency, \
             rate_count, rate_window_ms, state \
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::text[], $7::int4[], $8::timestamptz[], $9::int8[], $10::timestamptz[], \
             $12::text[], $13::uuid[], $14::bool[], $15::text[], $16::text[], $17::uuid[], \
             $18::text[], $19::int4[], $20::int4[], $21::int8[]) \
             AS new (id, name, display_name, payload, state, queue, priority, run_at, \
                 max_retries, created_at, recurring_id, parent_id, on_failure, labels, \
                 trace_context, batch_id, concurrency_key, concurrency, rate_count, \
                 rate_window_ms)";
    let one = "VALUES ($1::uuid, $2::text, $3::text, $4::text::json, $5::text, $6::text, \
             $7::int4, $8::timestamptz, $9::int8, $12::text, $13::uuid, $14::bool, \
             $15::text::json, $10::timestamptz, $10::timestamptz, $16::text, $17::uuid, \
             $18::text, $19::int4, $20::int4, $21::int8, $5::text)";
    let statement = |source: &str, conflict: &str| {
        format!(
            "WITH inserted AS ( \
                 INSERT INTO jobs_job (id, name, display_name, payload, state, queue, \
                     priority, run_at, max_retries, recurring_id, parent_id, on_failure, \
                     labels, created_at, updated_at, trace_context, batch_id, \
                     concurrency_key, concurrency, rate_count, rate_window_ms, \
                     created_state) \
                 {source} {conflict} \
                 RETURNING state \
             ), counted AS ( \
                 INSERT INTO jobs_state_delta (state, n) \
                 SELECT state, count(*) FROM inserted GROUP BY state \
             ) \
             SELECT pg_notify(jobs_channel($11), '') FROM (SELECT 1 FROM inserted LIMIT 1) AS any_inserted"
        )
    };
    let skip = "ON CONFLICT (id) DO NOTHING";
    [
        statement(arrays, ""),
        statement(arrays, skip),
        statement(one, ""),
        statement(one, skip),
    ]
});

/// Inserts jobs on `conn` in one statement (an existing id is skipped) that counts them
/// by state (migration 42) and notifies listeners when the surrounding transaction
/// commits. Each row says its own creation (`created_at`, `created_state`), from which
/// reading the history derives its first entry, so a deduped enqueue leaves no trace
/// and a new job writes no history row. Used by the storage and by transactional
/// enqueue.
pub(crate) async fn jobs_insert_with(conn: &mut PgConnection, jobs: &[NewJob]) -> Result<()> {
    // Ids made for this insert cannot clash: skip the speculative insert that
    // `ON CONFLICT` costs per row (a fifth of a 1,000-job insert).
    let skip = usize::from(!jobs.iter().all(|job| job.fresh_id));
    if let [job] = jobs {
        sqlx::query(&INSERTS[2 + skip])
            .bind(job.id.as_uuid())
            .bind(job.name.as_str())
            .bind(text(&job.display_name))
            .bind(job.payload.as_str())
            .bind(job.state.as_str())
            .bind(job.queue.as_str())
            .bind(job.priority)
            .bind(job.run_at)
            .bind(job.max_retries.map(i64::from))
            .bind(job.created_at)
            .bind(CHANNEL)
            .bind(job.recurring_id.as_deref())
            .bind(job.parent_id.map(|id| id.as_uuid()))
            .bind(job.on_failure)
            .bind(text(&job.labels_json()).into_owned())
            .bind(job.trace_context.as_deref())
            .bind(job.batch_id.map(|id| id.as_uuid()))
            .bind(job.concurrency.as_ref().map(|c| text(&c.key).into_owned()))
            .bind(job.concurrency.as_ref().and_then(|c| c.limit.map(int)))
            .bind(key_rate(job).map(|rate| int(rate.count)))
            .bind(key_rate(job).map(window_ms))
            .execute(conn)
            .await?;
        return Ok(());
    }
    if jobs.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(jobs.len());
    let mut names = Vec::with_capacity(jobs.len());
    let mut display_names = Vec::with_capacity(jobs.len());
    let mut payloads = Vec::with_capacity(jobs.len());
    let mut states = Vec::with_capacity(jobs.len());
    let mut queues = Vec::with_capacity(jobs.len());
    let mut priorities = Vec::with_capacity(jobs.len());
    let mut run_ats = Vec::with_capacity(jobs.len());
    let mut retries = Vec::with_capacity(jobs.len());
    let mut created_ats = Vec::with_capacity(jobs.len());
    let mut recurring_ids = Vec::with_capacity(jobs.len());
    let mut parent_ids = Vec::with_capacity(jobs.len());
    let mut on_failures = Vec::with_capacity(jobs.len());
    let mut labels = Vec::with_capacity(jobs.len());
    let mut trace_contexts = Vec::with_capacity(jobs.len());
    let mut batch_ids = Vec::with_capacity(jobs.len());
    let mut keys = Vec::with_capacity(jobs.len());
    let mut limits = Vec::with_capacity(jobs.len());
    let mut rate_counts = Vec::with_capacity(jobs.len());
    let mut rate_windows = Vec::with_capacity(jobs.len());
    for job in jobs {
        keys.push(job.concurrency.as_ref().map(|c| text(&c.key).into_owned()));
        limits.push(job.concurrency.as_ref().and_then(|c| c.limit.map(int)));
        rate_counts.push(key_rate(job).map(|rate| int(rate.count)));
        rate_windows.push(key_rate(job).map(window_ms));
        ids.push(job.id.as_uuid());
        names.push(job.name.as_str());
        display_names.push(text(&job.display_name).into_owned());
        payloads.push(job.payload.as_str());
        states.push(job.state.as_str());
        queues.push(job.queue.as_str());
        priorities.push(job.priority);
        run_ats.push(job.run_at);
        retries.push(job.max_retries.map(i64::from));
        created_ats.push(job.created_at);
        recurring_ids.push(job.recurring_id.as_deref());
        parent_ids.push(job.parent_id.map(|id| id.as_uuid()));
        on_failures.push(job.on_failure);
        labels.push(text(&job.labels_json()).into_owned());
        trace_contexts.push(job.trace_context.as_deref());
        batch_ids.push(job.batch_id.map(|id| id.as_uuid()));
    }
    sqlx::query(&INSERTS[skip])
        .bind(ids)
        .bind(names)
        .bind(display_names)
        .bind(payloads)
        .bind(states)
        .bind(queues)
        .bind(priorities)
        .bind(run_ats)
        .bind(retries)
        .bind(created_ats)
        .bind(CHANNEL)
        .bind(recurring_ids)
        .bind(parent_ids)
        .bind(on_failures)
        .bind(labels)
        .bind(trace_contexts)
        .bind(batch_ids)
        .bind(keys)
        .bind(limits)
        .bind(rate_counts)
        .bind(rate_windows)
        .execute(conn)
        .await?;
    Ok(())
}

/// The rate of a keyed job's key, if it has one.
fn key_rate(job: &NewJob) -> Option<crate::Rate> {
    job.concurrency
        .as_ref()
        .and_then(|concurrency| concurrency.rate)
}

/// Whether the `jobs_job` row waits while servers run and none registers its name (a
/// server row without names, of an older release, counts as registering every name).
pub(super) const UNSERVED: &str = "(jobs_job.state IN ('Enqueued', 'Scheduled') \
     AND EXISTS (SELECT 1 FROM jobs_server) \
     AND NOT EXISTS (SELECT 1 FROM jobs_server AS server WHERE server.jobs IS NULL \
         OR jobs_job.name IN (SELECT json_array_elements_text(server.jobs::json))))";

impl LifecycleStore for PgStorage {
    async fn jobs_admit(&self, jobs: &[NewJob]) -> Result<Vec<crate::storage::Admitted>> {
        self.admit(jobs).await
    }

    async fn jobs_insert(&self, jobs: &[NewJob]) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        jobs_insert_with(&mut conn, jobs).await
    }

    async fn jobs_claim(&self, request: ClaimRequest<'_>) -> Result<Vec<ClaimedJob>> {
        super::claim::jobs_claim(self, request).await
    }

    async fn jobs_complete(&self, completions: &[Completion]) -> Result<()> {
        if completions.is_empty() {
            return Ok(());
        }
        let n = completions.len();
        let (mut ids, mut owners, mut attempts, mut states) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let mut backtraces = Vec::with_capacity(n);
        let mut results = Vec::with_capacity(n);
        let (mut wait_names, mut wait_keys) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut tokens, mut uncharged, mut rescued) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut run_ats, mut last_errors, mut messages, mut sources, mut ats) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for completion in completions {
            let (state, run_at, failure) = completion.outcome.ending();
            let stored = failure.map(stored_failure);
            let (message, source_list, backtrace) = match stored {
                Some(stored) => (Some(stored.message), Some(stored.sources), stored.backtrace),
                None => (None, None, None),
            };
            let message = message.or_else(|| completion.outcome.note().map(str::to_owned));
            let given_back = completion.outcome.uncharged();
            ids.push(completion.id.as_uuid());
            owners.push(completion.owner.as_str());
            // The attempt as the history row records it: given back, it is not counted.
            attempts.push(int(completion.attempt - u32::from(given_back)));
            tokens.push(completion.token);
            uncharged.push(i32::from(given_back));
            rescued.push(i32::from(completion.outcome.rescued()));
            states.push(state.as_str());
            run_ats.push(run_at);
            last_errors.push(failure.map(|failure| text(&failure_summary(failure)).into_owned()));
            messages.push(message.map(|message| text(&message).into_owned()));
            sources.push(source_list);
            backtraces.push(backtrace.map(|backtrace| text(&backtrace).into_owned()));
            results.push(completion.result.as_deref());
            let wait = completion.outcome.wait();
            wait_names.push(wait.map(|wait| text(&wait.name).into_owned()));
            wait_keys.push(wait.map(|wait| text(&wait.key).into_owned()));
            ats.push(completion.at);
        }
        // `fenced` keeps the results whose fence holds and locks their rows in id order
        // (see the module docs); only the rows it updated get a history row. The state
        // is compared with a value the planner does not see (`SELECT 'Processing'`):
        // with the literal, statistics taken before the jobs ran (no row `Processing`)
        // made it hash every entry of a partial index on `Processing`, dead ones of
        // every job run since the last vacuum included, at each batch of results,
        // instead of finding the batch's rows by id.
        let commit_mode = self.commit_mode();
        let statement = format!(
            "WITH fenced AS ( \
                 SELECT done.* \
                 FROM UNNEST($1::uuid[], $2::text[], $3::int4[], $4::text[], \
                     $5::timestamptz[], $6::text[], $7::text[], $8::text[], $9::timestamptz[], \
                     $11::int8[], $12::int4[], $13::int4[], $14::text[], $15::text[], \
                     $16::text[], $17::text[]) \
                     WITH ORDINALITY AS done (id, owner, attempt, state, run_at, last_error, \
                         message, sources, at, token, uncharged, rescued, backtrace, result, \
                         wait_name, wait_key, ord) \
                 JOIN jobs_job AS job ON job.id = done.id \
                 WHERE job.owner = done.owner AND job.token = done.token \
                     AND job.state = (SELECT 'Processing') \
                 ORDER BY job.id \
                 FOR UPDATE OF job \
             ), updated AS ( \
                 UPDATE jobs_job AS job SET state = fenced.state, \
                     run_at = COALESCE(fenced.run_at, job.run_at), \
                     last_error = COALESCE(fenced.last_error, job.last_error), \
                     attempt = job.attempt - fenced.uncharged, \
                     rescues = job.rescues + fenced.rescued, \
                     result = CASE WHEN fenced.state = 'Succeeded' THEN fenced.result \
                         ELSE job.result END, \
                     owner = NULL, lease_until = NULL, ahead = false, updated_at = fenced.at, \
                     wait_name = fenced.wait_name, wait_key = fenced.wait_key \
                 FROM fenced WHERE job.id = fenced.id \
                 RETURNING fenced.* \
             ), history AS ( \
                 INSERT INTO jobs_event (job_id, at, state, attempt, server, message, sources, \
                     backtrace) \
                 SELECT id, at, state, attempt, owner, message, sources::json, backtrace \
                 FROM updated ORDER BY ord \
             ), {RELEASE} \
             SELECT ({commit_mode}) AS async_commit, \
                 (SELECT pg_notify(jobs_channel($10), '') WHERE EXISTS (SELECT 1 FROM released) \
                     OR EXISTS (SELECT 1 FROM updated WHERE uncharged = 1 OR rescued = 1)) \
                     AS notified",
        );
        let complete = sqlx::query(&statement)
            .bind(ids)
            .bind(owners)
            .bind(attempts)
            .bind(states)
            .bind(run_ats)
            .bind(last_errors)
            .bind(messages)
            .bind(sources)
            .bind(ats)
            .bind(CHANNEL)
            .bind(tokens)
            .bind(uncharged)
            .bind(rescued)
            .bind(backtraces)
            .bind(results)
            .bind(wait_names)
            .bind(wait_keys);
        let waits: Vec<(&EventWait, DateTime<Utc>)> = completions
            .iter()
            .filter_map(|completion| Some((completion.outcome.wait()?, completion.at)))
            .collect();
        if waits.is_empty() {
            complete.execute(&self.pool).await?;
            return Ok(());
        }
        // A wait stored now finds the event sent while its job was still running.
        let mut tx = super::begin(&self.pool).await?;
        lock_waits(&mut tx, waits.iter().map(|(wait, _)| *wait)).await?;
        complete.execute(&mut *tx).await?;
        for (wait, at) in waits {
            waits_resume(&mut tx, &[wait], kept_since(at), at).await?;
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
        let (only, tokens) = match only {
            Some(fences) => {
                let (ids, tokens) = fence_arrays(fences);
                (Some(ids), Some(tokens))
            }
            None => (None, None),
        };
        let mut tx = super::begin(&self.pool).await?;
        let released: i64 = sqlx::query_scalar(
            "WITH mine AS ( \
                 SELECT id FROM jobs_job WHERE owner = $1 AND state = 'Processing' \
                     AND ($3::uuid[] IS NULL OR (id, token) IN ( \
                         SELECT * FROM UNNEST($3::uuid[], $4::int8[]))) \
                 ORDER BY id FOR UPDATE \
             ), released AS ( \
                 UPDATE jobs_job AS job SET state = 'Enqueued', attempt = job.attempt - 1, \
                     owner = NULL, lease_until = NULL, ahead = false, run_at = $2, \
                     updated_at = $2 \
                 FROM mine WHERE job.id = mine.id \
                 RETURNING job.id, job.attempt \
             ), history AS ( \
                 INSERT INTO jobs_event (job_id, at, state, attempt, server) \
                 SELECT id, $2, 'Enqueued', attempt, $1 FROM released \
             ) \
             SELECT count(*) FROM released",
        )
        .bind(owner)
        .bind(now)
        .bind(only)
        .bind(tokens)
        .fetch_one(&mut *tx)
        .await?;
        if released > 0 {
            // Released so that another server runs them at once: tell the servers.
            sqlx::query("SELECT pg_notify(jobs_channel($1), '')")
                .bind(CHANNEL)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(u64::try_from(released).unwrap_or(0))
    }

    async fn jobs_release_unheld(
        &self,
        owner: &str,
        held: &[JobId],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let held: Vec<Uuid> = held.iter().map(JobId::as_uuid).collect();
        let released: i64 = sqlx::query_scalar(
            "WITH mine AS ( \
                 SELECT id FROM jobs_job WHERE owner = $1 AND state = 'Processing' \
                     AND NOT (id = ANY($3::uuid[])) \
                 ORDER BY id FOR UPDATE \
             ), released AS ( \
                 UPDATE jobs_job AS job SET state = 'Enqueued', attempt = job.attempt - 1, \
                     owner = NULL, lease_until = NULL, ahead = false, run_at = $2, \
                     updated_at = $2 \
                 FROM mine WHERE job.id = mine.id \
                 RETURNING job.id, job.attempt \
             ), history AS ( \
                 INSERT INTO jobs_event (job_id, at, state, attempt, server, message) \
                 SELECT id, $2, 'Enqueued', attempt, $1, $4 FROM released \
             ) \
             SELECT count(*), \
                 (SELECT pg_notify(jobs_channel($5), '') WHERE EXISTS (SELECT 1 FROM released)) AS notified \
             FROM released",
        )
        .bind(owner)
        .bind(now)
        .bind(held)
        .bind(UNHELD_MESSAGE)
        .bind(CHANNEL)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(released).unwrap_or(0))
    }

    async fn jobs_stopped(&self, stopped: &[Fence]) -> Result<u64> {
        if stopped.is_empty() {
            return Ok(0);
        }
        let (ids, tokens) = fence_arrays(stopped);
        let changed: i64 = sqlx::query_scalar(
            "WITH stopped AS ( \
                 SELECT id FROM jobs_job WHERE state = 'Deleted' \
                     AND (id, token) IN (SELECT * FROM UNNEST($1::uuid[], $2::int8[])) \
                 ORDER BY id FOR UPDATE \
             ), changed AS ( \
                 UPDATE jobs_job AS job SET owner = NULL, lease_until = NULL \
                 FROM stopped WHERE job.id = stopped.id RETURNING 1 \
             ) \
             SELECT count(*) FROM changed",
        )
        .bind(ids)
        .bind(tokens)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(changed).unwrap_or(0))
    }

    async fn jobs_expired(
        &self,
        _now: DateTime<Utc>,
        offset: chrono::Duration,
        limit: u32,
    ) -> Result<Vec<ExpiredJob>> {
        let rows = sqlx::query(
            "SELECT id, owner, token, attempt, ahead, rescues FROM jobs_job \
             WHERE state = 'Processing' \
                 AND lease_until < clock_timestamp() + $1 * interval '1 microsecond' \
             LIMIT $2",
        )
        .bind(micros_of(offset))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(expired_job).collect()
    }

    async fn jobs_next_run_at(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(sqlx::query_scalar(
            "SELECT min(run_at) FROM jobs_job WHERE state IN ('Enqueued', 'Scheduled')",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    async fn jobs_deleted_among(&self, ids: &[JobId]) -> Result<Vec<JobId>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = ids.iter().map(JobId::as_uuid).collect();
        let deleted: Vec<Uuid> =
            sqlx::query_scalar("SELECT id FROM jobs_job WHERE id = ANY($1) AND state = 'Deleted'")
                .bind(ids)
                .fetch_all(&self.pool)
                .await?;
        Ok(deleted.into_iter().map(JobId::from).collect())
    }

    async fn jobs_fail_unserved(
        &self,
        due_before: DateTime<Utc>,
        now: DateTime<Utc>,
        server: &str,
        note: &str,
        limit: u32,
    ) -> Result<u64> {
        let failed: i64 = sqlx::query_scalar(&format!(
            "WITH doomed AS ( \
                 SELECT id FROM jobs_job WHERE state IN ('Enqueued', 'Scheduled') \
                     AND run_at < $3 AND {UNSERVED} \
                 ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED \
             ), updated AS ( \
                 UPDATE jobs_job SET state = 'Failed', updated_at = $1, \
                     last_error = 'no server registers `' || jobs_job.name || '`' || $2 \
                 FROM doomed WHERE jobs_job.id = doomed.id \
                 RETURNING jobs_job.id, jobs_job.state, jobs_job.attempt, \
                     jobs_job.last_error, $1::timestamptz AS at \
             ), history AS ( \
                 INSERT INTO jobs_event (job_id, at, state, attempt, server, message) \
                 SELECT id, at, 'Failed', attempt, $5, last_error FROM updated \
             ), {RELEASE} \
             SELECT count(*) FROM updated"
        ))
        .bind(now)
        .bind(note)
        .bind(due_before)
        .bind(i64::from(limit))
        .bind(server)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(failed).unwrap_or(0))
    }
}
