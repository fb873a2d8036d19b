//! Unique jobs on SQLite (see `crate::job::unique`): each key is looked up and taken
//! inside the write transaction that inserts the jobs, whose write lock (this process's
//! writer, and `BEGIN IMMEDIATE` across processes) keeps any other enqueue of the key
//! out until it commits.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{Acquire, SqliteConnection};

use super::lifecycle::jobs_insert_with;
use super::rows::micros;
use super::{SqliteStorage, begin};
use crate::storage::rows::{StoredRow, state};
use crate::storage::{Admitted, NewJob, UniqueClaim};
use crate::{JobId, Result};

/// Inserts `jobs` on `conn` in a transaction (a savepoint of the caller's, if it is in
/// one), but for each job whose unique key an
/// earlier job holds: that one's id is its answer, and with `replace` a holder that was
/// never claimed takes its time and arguments. A key taken by a job of this batch makes
/// the later ones of the batch its duplicates; a continuation of a job of the batch that
/// was not stored is not stored either.
pub(crate) async fn jobs_admit_with(
    conn: &mut SqliteConnection,
    jobs: &[NewJob],
) -> Result<Vec<Admitted>> {
    let mut tx = conn.begin().await?;
    let conn = &mut *tx;
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
        match holder(conn, unique, job.created_at).await? {
            Some(holder) => {
                *answer = if unique.replace && replace(conn, holder, job).await? {
                    Admitted::Replaced(holder)
                } else {
                    Admitted::Duplicate(holder)
                };
                taken.insert(unique.key, holder);
                left_out.push(job.id);
            }
            None => {
                sqlx::query(
                    "INSERT INTO jobs_unique (key, job_id, until) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (key) DO UPDATE SET job_id = excluded.job_id, \
                         until = excluded.until",
                )
                .bind(unique.key.to_string())
                .bind(job.id.to_string())
                .bind(micros(unique.until))
                .execute(&mut *conn)
                .await?;
                taken.insert(unique.key, job.id);
            }
        }
    }
    if admitted.iter().all(|answer| *answer == Admitted::Stored) {
        jobs_insert_with(conn, jobs).await?;
    } else {
        let stored: Vec<NewJob> = jobs
            .iter()
            .zip(&admitted)
            .filter(|(_, answer)| **answer == Admitted::Stored)
            .map(|(job, _)| job.clone())
            .collect();
        jobs_insert_with(conn, &stored).await?;
    }
    tx.commit().await?;
    Ok(admitted)
}

/// The job that holds `unique`'s key at `now` in a state it counts, if any. Its first
/// statement writes (it drops the key if it expired), so a caller's deferred transaction
/// takes the write lock before it reads.
async fn holder(
    conn: &mut SqliteConnection,
    unique: &UniqueClaim,
    now: DateTime<Utc>,
) -> Result<Option<JobId>> {
    let key = unique.key.to_string();
    sqlx::query("DELETE FROM jobs_unique WHERE key = ?1 AND until <= ?2")
        .bind(&key)
        .bind(micros(now))
        .execute(&mut *conn)
        .await?;
    let row = sqlx::query(
        "SELECT job.id, job.state FROM jobs_unique AS u JOIN jobs_job AS job ON job.id = u.job_id \
         WHERE u.key = ?1",
    )
    .bind(&key)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let held = unique.states.counts(state(&row, "state")?);
    held.then(|| row.job_id("id")).transpose()
}

/// Gives `holder` the time and arguments of `job` if it was never claimed (and is not a
/// continuation); whether it did. Its history says so.
async fn replace(conn: &mut SqliteConnection, holder: JobId, job: &NewJob) -> Result<bool> {
    let replaced = sqlx::query(
        "UPDATE jobs_job SET payload = ?2, display_name = ?3, labels = ?4, run_at = ?5, \
             state = ?6, updated_at = ?7 \
         WHERE id = ?1 AND state IN ('Scheduled', 'Enqueued') AND token = 0 \
             AND parent_id IS NULL",
    )
    .bind(holder.to_string())
    .bind(&job.payload)
    .bind(&job.display_name)
    .bind(job.labels_json())
    .bind(micros(job.run_at))
    .bind(job.state.as_str())
    .bind(micros(job.created_at))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if replaced == 0 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO jobs_event (job_id, at, state, attempt, message) VALUES (?1, ?2, ?3, 0, ?4)",
    )
    .bind(holder.to_string())
    .bind(micros(job.created_at))
    .bind(job.state.as_str())
    .bind(crate::storage::stored::replaced_message(job.run_at))
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

impl SqliteStorage {
    /// [`jobs_admit_with`] in a write transaction of its own.
    pub(super) async fn admit(&self, jobs: &[NewJob]) -> Result<Vec<Admitted>> {
        let mut writer = self.writer.lock().await?;
        let mut tx = begin(&mut writer).await?;
        let admitted = jobs_admit_with(&mut tx, jobs).await?;
        tx.commit().await?;
        Ok(admitted)
    }

    /// Drops up to `limit` keys whose window ended before `before`; returns how many.
    pub(super) async fn prune_unique(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
        Ok(sqlx::query(
            "DELETE FROM jobs_unique WHERE key IN \
                 (SELECT key FROM jobs_unique WHERE until <= ?1 LIMIT ?2)",
        )
        .bind(micros(before))
        .bind(i64::from(limit))
        .execute(&mut *self.writer.lock().await?)
        .await?
        .rows_affected())
    }
}
