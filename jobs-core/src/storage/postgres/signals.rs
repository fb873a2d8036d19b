//! Events sent to jobs on PostgreSQL, and the jobs' waits for them (see
//! `storage/signals.rs`). A send and a completion that stores a wait each take a
//! transaction-scoped advisory lock per name and key first, so that whichever commits
//! second sees what the first stored: the wait sees the event, or the send the wait.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::PgStorage;
use super::listener::CHANNEL;
use super::rows::text;
use crate::Result;
use crate::storage::{EventWait, Fence, SignalStore, WAIT_TIMED_OUT, WaitState};

/// Takes the locks of `waits` (one per name and key, in key order, so that two batches
/// never wait for each other crosswise), held until the transaction ends.
pub(super) async fn lock_waits<'a>(
    tx: &mut PgConnection,
    waits: impl IntoIterator<Item = &'a EventWait>,
) -> Result<()> {
    let (names, keys): (Vec<String>, Vec<String>) = waits
        .into_iter()
        .map(|wait| (text(&wait.name).into_owned(), text(&wait.key).into_owned()))
        .unzip();
    let locks: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT \
             hashtextextended('jobs.signal:' || json_build_array(name, key)::text, 0) AS lock_key \
         FROM UNNEST($1::text[], $2::text[]) AS w (name, key) ORDER BY lock_key",
    )
    .bind(names)
    .bind(keys)
    .fetch_all(&mut *tx)
    .await?;
    for lock in locks {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(lock)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Resumes the jobs waiting for any of `waits` when an event of it sent at or after
/// `since` is stored (see [`SignalStore::signal_send`]); returns how many. The caller
/// holds their locks ([`lock_waits`]).
pub(super) async fn waits_resume(
    tx: &mut PgConnection,
    waits: &[&EventWait],
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<u64> {
    let mut names = Vec::with_capacity(waits.len());
    let mut keys = Vec::with_capacity(waits.len());
    let mut steps = Vec::with_capacity(waits.len());
    for wait in waits {
        names.push(text(&wait.name).into_owned());
        keys.push(text(&wait.key).into_owned());
        steps.push(text(&wait.outcome_step()).into_owned());
    }
    let resumed: i64 = sqlx::query_scalar(
        "WITH waits AS ( \
             SELECT DISTINCT name, key, step \
             FROM UNNEST($1::text[], $2::text[], $3::text[]) AS w (name, key, step) \
         ), sent AS ( \
             SELECT waits.name, waits.key, waits.step, earliest.payload FROM waits \
             CROSS JOIN LATERAL ( \
                 SELECT payload FROM jobs_signal AS signal \
                 WHERE signal.name = waits.name AND signal.key = waits.key \
                     AND signal.sent_at >= $4 \
                 ORDER BY signal.sent_at, signal.seq LIMIT 1 \
             ) AS earliest \
         ), resumed AS ( \
             UPDATE jobs_job AS job SET state = 'Enqueued', run_at = $5, updated_at = $5, \
                 wait_name = NULL, wait_key = NULL \
             FROM sent WHERE job.state = 'Scheduled' AND job.wait_name = sent.name \
                 AND job.wait_key = sent.key \
             RETURNING job.id, job.attempt, sent.name, sent.key, sent.step, sent.payload \
         ), steps AS ( \
             INSERT INTO jobs_step (job_id, name, value, at) \
             SELECT id, step, json_build_object('event', payload), $5 FROM resumed \
             ON CONFLICT (job_id, name) DO NOTHING \
         ), history AS ( \
             INSERT INTO jobs_event (job_id, at, state, attempt, message) \
             SELECT id, $5, 'Enqueued', attempt, \
                 'resumed by the event `' || name || '` for `' || key || '`' \
             FROM resumed \
         ) \
         SELECT count(*), \
             (SELECT pg_notify(jobs_channel($6), '') WHERE EXISTS (SELECT 1 FROM resumed)) AS notified \
         FROM resumed",
    )
    .bind(names)
    .bind(keys)
    .bind(steps)
    .bind(since)
    .bind(now)
    .bind(CHANNEL)
    .fetch_one(&mut *tx)
    .await?;
    Ok(u64::try_from(resumed).unwrap_or(0))
}

impl SignalStore for PgStorage {
    async fn signal_send(
        &self,
        wait: &EventWait,
        payload: &str,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut tx = super::begin(&self.pool).await?;
        lock_waits(&mut tx, [wait]).await?;
        sqlx::query(
            "INSERT INTO jobs_signal (name, key, payload, sent_at) VALUES ($1, $2, $3::json, $4)",
        )
        .bind(text(&wait.name).as_ref())
        .bind(text(&wait.key).as_ref())
        .bind(payload)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let resumed = waits_resume(&mut tx, &[wait], since, now).await?;
        tx.commit().await?;
        Ok(resumed)
    }

    async fn signal_wait(
        &self,
        job: Fence,
        wait: &EventWait,
        timeout: chrono::Duration,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<WaitState> {
        let outcome_step = text(&wait.outcome_step()).into_owned();
        let deadline_step = text(&wait.deadline_step()).into_owned();
        let mut tx = super::begin(&self.pool).await?;
        let step = |name: &str| {
            sqlx::query_scalar::<sqlx::Postgres, String>(
                "SELECT value::text FROM jobs_step WHERE job_id = $1 AND name = $2",
            )
            .bind(job.id.as_uuid())
            .bind(name.to_owned())
        };
        if let Some(outcome) = step(&outcome_step).fetch_optional(&mut *tx).await? {
            return Ok(WaitState::Ended(outcome));
        }
        // The state as a value the planner does not see (see `logs_insert`).
        let held: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM jobs_job WHERE id = $1 AND token = $2 \
                 AND state = (SELECT 'Processing'))",
        )
        .bind(job.id.as_uuid())
        .bind(job.token)
        .fetch_one(&mut *tx)
        .await?;
        let until = match step(&deadline_step).fetch_optional(&mut *tx).await? {
            Some(stored) => serde_json::from_str(&stored)?,
            None => {
                let until = now
                    .checked_add_signed(timeout)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                if held {
                    put_step(
                        &mut tx,
                        job,
                        &deadline_step,
                        &serde_json::to_string(&until)?,
                        now,
                    )
                    .await?;
                }
                until
            }
        };
        if !held {
            return Ok(WaitState::Pending { until });
        }
        let event: Option<String> = sqlx::query_scalar(
            "SELECT json_build_object('event', payload)::text FROM jobs_signal \
             WHERE name = $1 AND key = $2 AND sent_at >= $3 ORDER BY sent_at, seq LIMIT 1",
        )
        .bind(text(&wait.name).as_ref())
        .bind(text(&wait.key).as_ref())
        .bind(since)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match event {
            Some(event) => Some(event),
            None if until <= now => Some(WAIT_TIMED_OUT.to_owned()),
            None => None,
        };
        if let Some(outcome) = &outcome {
            put_step(&mut tx, job, &outcome_step, outcome, now).await?;
        }
        tx.commit().await?;
        Ok(match outcome {
            Some(outcome) => WaitState::Ended(outcome),
            None => WaitState::Pending { until },
        })
    }

    async fn signals_prune(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
        Ok(sqlx::query(
            "DELETE FROM jobs_signal WHERE seq IN \
                 (SELECT seq FROM jobs_signal WHERE sent_at < $1 ORDER BY sent_at LIMIT $2)",
        )
        .bind(before)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}

/// Stores a step of a job whose claim the caller checked in `tx` (kept when stored).
async fn put_step(
    tx: &mut PgConnection,
    job: Fence,
    name: &str,
    value: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO jobs_step (job_id, name, value, at) VALUES ($1, $2, $3::json, $4) \
         ON CONFLICT (job_id, name) DO NOTHING",
    )
    .bind(job.id.as_uuid())
    .bind(name)
    .bind(value)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
