//! Unique jobs on PostgreSQL (see `crate::job::unique`): each key is looked up and taken
//! inside the transaction that inserts the jobs, after a transaction-scoped advisory lock
//! on the key. A second enqueue of the key waits for that lock, and its lookup, a
//! statement begun after the first committed, sees the first's job; the primary key of
//! `jobs_unique` turns any enqueue that slipped past the lock (a caller's repeatable-read
//! transaction) into an error rather than a second job.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{Acquire, PgConnection};

use super::PgStorage;
use super::lifecycle::jobs_insert_with;
use super::listener::CHANNEL;
use super::rows::text;
use crate::storage::rows::{StoredRow, state};
use crate::storage::{Admitted, NewJob, UniqueClaim};
use crate::{JobId, Result};

/// The first key of the two-key advisory locks of unique keys ("jobu"), a key space of
/// their own beside the single-key locks of events and tool callers.
const LOCK_CLASS: i32 = 0x6a6f_6275;

/// The second key of the lock of a unique key.
fn lock_key(key: &uuid::Uuid) -> i32 {
    let bytes = key.as_bytes();
    i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// Inserts `jobs` on `conn`, but for each job whose unique key an earlier job holds:
/// that one's id is its answer, and with `replace` a holder that was never claimed takes
/// its time and arguments. A key taken by a job of this batch makes the later ones of
/// the batch its duplicates; a continuation of a job of the batch that was not stored is
/// not stored either. Runs in a transaction, or a savepoint of the caller's.
pub(crate) async fn jobs_admit_with(
    conn: &mut PgConnection,
    jobs: &[NewJob],
) -> Result<Vec<Admitted>> {
    let mut tx = conn.begin().await?;
    // In one order, so two batches that share keys never wait for each other in a cycle.
    let mut locks: Vec<i32> = jobs
        .iter()
        .filter_map(|job| job.unique.as_ref().map(|unique| lock_key(&unique.key)))
        .collect();
    locks.sort_unstable();
    locks.dedup();
    for lock in locks {
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(LOCK_CLASS)
            .bind(lock)
            .execute(&mut *tx)
            .await?;
    }
    let mut admitted = vec![Admitted::Stored; jobs.len()];
    let mut taken: HashMap<uuid::Uuid, JobId> = HashMap::new();
    let mut left_out: Vec<JobId> = Vec::new();
    for (job, answer) in jobs.iter().zip(&mut admitted) {
        if job
            .parent_id
            .is_some_and(|parent| left_out.contains(&parent))
        {
            *answer = Admitted::Skipped;
            left_out.push(job.id);
            continue;
        }
        let Some(unique) = &job.unique else {
            continue;
        };
        if let Some(&holder) = taken.get(&unique.key) {
            *answer = Admitted::Duplicate(holder);
            left_out.push(job.id);
            continue;
        }
        match holder(&mut tx, unique, job.created_at).await? {
            Some(holder) => {
                *answer = if unique.replace && replace(&mut tx, holder, job).await? {
                    Admitted::Replaced(holder)
                } else {
                    Admitted::Duplicate(holder)
                };
                taken.insert(unique.key, holder);
                left_out.push(job.id);
            }
            None => {
                sqlx::query(
                    "INSERT INTO jobs_unique (key, job_id, until) VALUES ($1, $2, $3) \
                     ON CONFLICT (key) DO UPDATE SET job_id = excluded.job_id, \
                         until = excluded.until",
                )
                .bind(unique.key)
                .bind(job.id.as_uuid())
                .bind(unique.until)
                .execute(&mut *tx)
                .await?;
                taken.insert(unique.key, job.id);
            }
        }
    }
    if admitted.iter().all(|answer| *answer == Admitted::Stored) {
        jobs_insert_with(&mut tx, jobs).await?;
    } else {
        let stored: Vec<NewJob> = jobs
            .iter()
            .zip(&admitted)
            .filter(|(_, answer)| **answer == Admitted::Stored)
            .map(|(job, _)| job.clone())
            .collect();
        jobs_insert_with(&mut tx, &stored).await?;
    }
    tx.commit().await?;
    Ok(admitted)
}

/// The job that holds `unique`'s key at `now` in a state it counts, if any.
async fn holder(
    conn: &mut PgConnection,
    unique: &UniqueClaim,
    now: DateTime<Utc>,
) -> Result<Option<JobId>> {
    let row = sqlx::query(
        "SELECT job.id, job.state FROM jobs_unique AS u JOIN jobs_job AS job ON job.id = u.job_id \
         WHERE u.key = $1 AND u.until > $2",
    )
    .bind(unique.key)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let held = unique.states.counts(state(&row, "state")?);
    held.then(|| row.job_id("id")).transpose()
}

/// Gives `holder` the time and arguments of `job` if it was never claimed (and is not a
/// continuation); whether it did. Its history says so, and servers elsewhere are woken
/// on commit, as by an insert. A claim that takes the row first makes the update find
/// nothing.
async fn replace(conn: &mut PgConnection, holder: JobId, job: &NewJob) -> Result<bool> {
    let replaced = sqlx::query(
        "WITH replaced AS ( \
             UPDATE jobs_job SET payload = $2::text::json, display_name = $3, \
                 labels = $4::text::json, run_at = $5, state = $6, updated_at = $7 \
             WHERE id = $1 AND state IN ('Scheduled', 'Enqueued') AND token = 0 \
                 AND parent_id IS NULL \
             RETURNING id \
         ), history AS ( \
             INSERT INTO jobs_event (job_id, at, state, attempt, message) \
             SELECT id, $7, $6, 0, $8 FROM replaced \
         ) \
         SELECT pg_notify($9, '') FROM replaced",
    )
    .bind(holder.as_uuid())
    .bind(job.payload.as_str())
    .bind(text(&job.display_name).as_ref())
    .bind(text(&job.labels_json()).as_ref())
    .bind(job.run_at)
    .bind(job.state.as_str())
    .bind(job.created_at)
    .bind(crate::storage::stored::replaced_message(job.run_at))
    .bind(CHANNEL)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(replaced > 0)
}

impl PgStorage {
    /// [`jobs_admit_with`] on a connection of the pool.
    pub(super) async fn admit(&self, jobs: &[NewJob]) -> Result<Vec<Admitted>> {
        let mut conn = self.pool.acquire().await?;
        jobs_admit_with(&mut conn, jobs).await
    }

    /// Drops up to `limit` keys whose window ended before `before`; returns how many.
    pub(super) async fn prune_unique(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
        Ok(sqlx::query(
            "DELETE FROM jobs_unique WHERE key IN \
                 (SELECT key FROM jobs_unique WHERE until <= $1 LIMIT $2)",
        )
        .bind(before)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}
