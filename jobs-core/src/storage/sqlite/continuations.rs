//! Continuations on SQLite: what a parent's result or deletion does to the jobs awaiting it.

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Sqlite};

use super::ROWS_PER_INSERT;
use super::lifecycle::{events_insert, finish_update};
use super::rows::micros;
use crate::storage::rows::StoredRow;
use crate::{JobId, JobState, Result};

/// Moves the awaiting continuations of `parents` (and theirs, transitively) to
/// `Deleted`: a continuation cannot run once its parent is gone. When they are members
/// of a batch (a batch that is a step of a chain), the batch's awaiting fan-in jobs go
/// first, so that the members' end releases nothing, and their continuations follow.
pub(super) async fn delete_continuations(
    tx: &mut sqlx::SqliteConnection,
    parents: Vec<JobId>,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut parents = parents;
    while !parents.is_empty() {
        let mut children = Vec::new();
        for chunk in parents.chunks(ROWS_PER_INSERT) {
            let fan_in = "id IN (SELECT fan_in.id FROM jobs_batch AS batch \
                 JOIN jobs_job AS fan_in ON fan_in.id IN (batch.then_id, batch.on_failure_id) \
                 WHERE batch.id IN (SELECT batch_id FROM jobs_job WHERE state = 'Awaiting' \
                     AND batch_id IS NOT NULL AND parent_id IN (";
            children.extend(delete_awaiting(tx, fan_in, "))", chunk, now).await?);
            children.extend(delete_awaiting(tx, "parent_id IN (", "", chunk, now).await?);
        }
        parents = children;
    }
    Ok(())
}

/// Moves the awaiting jobs that `{head}{ids}){tail}` matches to `Deleted`, with a
/// history row each; returns their ids.
async fn delete_awaiting(
    tx: &mut sqlx::SqliteConnection,
    head: &str,
    tail: &str,
    ids: &[JobId],
    now: DateTime<Utc>,
) -> Result<Vec<JobId>> {
    let mut update =
        QueryBuilder::<Sqlite>::new("UPDATE jobs_job SET state = 'Deleted', updated_at = ");
    update
        .push_bind(micros(now))
        .push(" WHERE state = 'Awaiting' AND ")
        .push(head);
    let mut separated = update.separated(", ");
    for id in ids {
        separated.push_bind(id.to_string());
    }
    update.push(")").push(tail).push(" RETURNING id, attempt");
    let rows = update.build().fetch_all(&mut *tx).await?;
    let mut deleted = Vec::with_capacity(rows.len());
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        let id = row.job_id("id")?;
        deleted.push(id);
        events.push((id, now, JobState::Deleted, row.count("attempt")?, None));
    }
    events_insert(tx, events).await?;
    Ok(deleted)
}

/// Releases the continuations that the finished `parents` decide: those of succeeded
/// parents (deleting their `on_failure` ones) and the `on_failure` ones of failed parents.
pub(super) async fn release_continuations(
    tx: &mut sqlx::SqliteConnection,
    succeeded: &[JobId],
    failed: &[JobId],
    now: DateTime<Utc>,
) -> Result<()> {
    for (parents, on_failure) in [(succeeded, false), (failed, true)] {
        for chunk in parents.chunks(ROWS_PER_INSERT) {
            let mut update =
                QueryBuilder::<Sqlite>::new("UPDATE jobs_job SET state = 'Enqueued', run_at = ");
            update
                .push_bind(micros(now))
                .push(", updated_at = ")
                .push_bind(micros(now))
                .push(" WHERE state = 'Awaiting' AND on_failure = ")
                .push_bind(on_failure)
                .push(" AND parent_id IN (");
            let mut ids = update.separated(", ");
            for id in chunk {
                ids.push_bind(id.to_string());
            }
            update.push(")");
            finish_update(tx, update, now, JobState::Enqueued).await?;
        }
    }
    // A succeeded parent's on-failure continuations will never run.
    for chunk in succeeded.chunks(ROWS_PER_INSERT) {
        let mut update =
            QueryBuilder::<Sqlite>::new("UPDATE jobs_job SET state = 'Deleted', updated_at = ");
        update
            .push_bind(micros(now))
            .push(" WHERE state = 'Awaiting' AND on_failure = 1 AND parent_id IN (");
        let mut ids = update.separated(", ");
        for id in chunk {
            ids.push_bind(id.to_string());
        }
        update.push(")");
        finish_update(tx, update, now, JobState::Deleted).await?;
    }
    Ok(())
}
