//! Events sent to jobs on SQLite, and the jobs' waits for them (see
//! `storage/signals.rs`). Every write holds the write lock from `BEGIN IMMEDIATE`, in
//! this process and across processes, so a send and the completion that stores a wait
//! never interleave.

use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::rows::micros;
use super::{SqliteStorage, begin};
use crate::storage::rows::StoredRow;
use crate::storage::{EventWait, Fence, SignalStore, WAIT_TIMED_OUT, WaitState};
use crate::{JobId, Result};

/// The outcome step of the earliest event of `wait` sent at or after `since`, if any.
async fn earliest(
    tx: &mut SqliteConnection,
    wait: &EventWait,
    since: DateTime<Utc>,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT '{\"event\":' || payload || '}' FROM jobs_signal \
         WHERE name = ?1 AND key = ?2 AND sent_at >= ?3 ORDER BY sent_at, seq LIMIT 1",
    )
    .bind(&wait.name)
    .bind(&wait.key)
    .bind(micros(since))
    .fetch_optional(&mut *tx)
    .await?)
}

/// Resumes the jobs waiting for `wait` when an event of it sent at or after `since` is
/// stored (see [`SignalStore::signal_send`]); returns how many, inside `tx`.
pub(super) async fn waits_resume(
    tx: &mut SqliteConnection,
    wait: &EventWait,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<u64> {
    let Some(outcome) = earliest(tx, wait, since).await? else {
        return Ok(0);
    };
    let resumed = sqlx::query(
        "UPDATE jobs_job SET state = 'Enqueued', run_at = ?3, updated_at = ?3, \
             wait_name = NULL, wait_key = NULL \
         WHERE state = 'Scheduled' AND wait_name = ?1 AND wait_key = ?2 \
         RETURNING id, attempt",
    )
    .bind(&wait.name)
    .bind(&wait.key)
    .bind(micros(now))
    .fetch_all(&mut *tx)
    .await?;
    let note = format!("resumed by the event `{}` for `{}`", wait.name, wait.key);
    for row in &resumed {
        let id: JobId = row.job_id("id")?;
        sqlx::query(
            "INSERT INTO jobs_step (job_id, name, value, at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (job_id, name) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(wait.outcome_step())
        .bind(&outcome)
        .bind(micros(now))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO jobs_event (job_id, at, state, attempt, message) \
             VALUES (?, ?, 'Enqueued', ?, ?)",
        )
        .bind(id.to_string())
        .bind(micros(now))
        .bind(i64::from(row.count("attempt")?))
        .bind(&note)
        .execute(&mut *tx)
        .await?;
    }
    Ok(resumed.len() as u64)
}

impl SignalStore for SqliteStorage {
    async fn signal_send(
        &self,
        wait: &EventWait,
        payload: &str,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        sqlx::query("INSERT INTO jobs_signal (name, key, payload, sent_at) VALUES (?, ?, ?, ?)")
            .bind(&wait.name)
            .bind(&wait.key)
            .bind(payload)
            .bind(micros(now))
            .execute(&mut *tx)
            .await?;
        let resumed = waits_resume(&mut tx, wait, since, now).await?;
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
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        let step = |name: String| {
            sqlx::query_scalar::<sqlx::Sqlite, String>(
                "SELECT value FROM jobs_step WHERE job_id = ? AND name = ?",
            )
            .bind(job.id.to_string())
            .bind(name)
        };
        if let Some(outcome) = step(wait.outcome_step()).fetch_optional(&mut *tx).await? {
            return Ok(WaitState::Ended(outcome));
        }
        let held: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM jobs_job WHERE id = ? AND token = ? \
                 AND state = 'Processing')",
        )
        .bind(job.id.to_string())
        .bind(job.token)
        .fetch_one(&mut *tx)
        .await?;
        let stored = step(wait.deadline_step()).fetch_optional(&mut *tx).await?;
        let until = match stored {
            Some(stored) => serde_json::from_str(&stored)?,
            None => {
                let until = now
                    .checked_add_signed(timeout)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                if held {
                    put_step(
                        &mut tx,
                        job.id,
                        &wait.deadline_step(),
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
        let outcome = match earliest(&mut tx, wait, since).await? {
            Some(event) => Some(event),
            None if until <= now => Some(WAIT_TIMED_OUT.to_owned()),
            None => None,
        };
        if let Some(outcome) = &outcome {
            put_step(&mut tx, job.id, &wait.outcome_step(), outcome, now).await?;
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
                 (SELECT seq FROM jobs_signal WHERE sent_at < ? ORDER BY sent_at LIMIT ?)",
        )
        .bind(micros(before))
        .bind(i64::from(limit))
        .execute(&mut *self.writer.lock().await?)
        .await?
        .rows_affected())
    }
}

/// Stores a step of a job whose claim the caller checked in `tx`.
async fn put_step(
    tx: &mut SqliteConnection,
    id: JobId,
    name: &str,
    value: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("INSERT INTO jobs_step (job_id, name, value, at) VALUES (?, ?, ?, ?)")
        .bind(id.to_string())
        .bind(name)
        .bind(value)
        .bind(micros(at))
        .execute(&mut *tx)
        .await?;
    Ok(())
}
