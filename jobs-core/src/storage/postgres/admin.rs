//! What the dashboard asks of PostgreSQL beyond running jobs: requeue and delete by
//! filter, throughput over time, the servers.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, QueryBuilder, Row};

use super::listener::CHANNEL;
use super::uint;
use crate::record::{JobQuery, ServerInfo, ThroughputPoint};
use crate::storage::REQUEUEABLE;
use crate::{JobId, JobState, Result};

/// Appends the query's filters (state, name, text search) as `AND …` conditions.
pub(super) fn push_filters(builder: &mut QueryBuilder<'_, Postgres>, query: &JobQuery) {
    if let Some(state) = query.state {
        builder.push(" AND state = ").push_bind(state.as_str());
    }
    if let Some(name) = &query.name {
        builder.push(" AND name = ").push_bind(name.clone());
    }
    if let Some(pattern) = query.label_pattern() {
        builder.push(" AND labels::text LIKE ").push_bind(pattern);
    }
    if let Some(pattern) = query.like_pattern() {
        builder
            .push(" AND (lower(display_name) LIKE ")
            .push_bind(pattern.clone())
            .push(" OR lower(name) LIKE ")
            .push_bind(pattern)
            .push(")");
    }
}

/// Which rows a state change applies to.
pub(super) enum Target<'a> {
    One(JobId),
    Matching(&'a JobQuery),
}

/// Moves the target rows to `Enqueued` (requeue) or `Deleted`, writes their history and,
/// for a requeue, wakes the servers; returns how many rows changed.
pub(super) async fn change_state(
    pool: &PgPool,
    target: Target<'_>,
    to: JobState,
    now: DateTime<Utc>,
) -> Result<u64> {
    // `matched` are the rows the target names; a delete also takes their awaiting
    // continuations, transitively (depth > 0), which are not counted.
    let mut update = QueryBuilder::<Postgres>::new(
        "WITH RECURSIVE matched AS (SELECT id, 0 AS depth FROM jobs_job WHERE ",
    );
    match to {
        JobState::Enqueued => update.push(format!("state IN {REQUEUEABLE}")),
        _ => update.push("state <> 'Deleted'"),
    };
    match target {
        Target::One(id) => {
            update.push(" AND id = ").push_bind(id.as_uuid());
        }
        Target::Matching(query) => push_filters(&mut update, query),
    }
    if to == JobState::Deleted {
        update.push(
            " UNION SELECT child.id, 1 FROM jobs_job AS child \
             JOIN matched ON child.parent_id = matched.id WHERE child.state = 'Awaiting'",
        );
    }
    update.push("), changed AS (UPDATE jobs_job SET ");
    match to {
        JobState::Enqueued => {
            update
                .push(
                    "state = 'Enqueued', attempt = 0, owner = NULL, lease_until = NULL, run_at = ",
                )
                .push_bind(now)
                .push(", ");
        }
        // A running job keeps its owner, which learns of the deletion and stops it.
        _ => {
            update.push("state = 'Deleted', lease_until = NULL, ");
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
    if to == JobState::Enqueued {
        update
            .push(", (SELECT pg_notify(")
            .push_bind(CHANNEL)
            .push(", '') WHERE EXISTS (SELECT 1 FROM changed)) AS notified");
    }
    let row = update.build().fetch_one(pool).await?;
    Ok(row.try_get::<i64, _>("n")?.try_into().unwrap_or(0))
}

pub(super) async fn throughput(
    pool: &PgPool,
    since: DateTime<Utc>,
) -> Result<Vec<ThroughputPoint>> {
    let rows = sqlx::query(
        "SELECT date_trunc('minute', at) AS minute, \
             count(*) FILTER (WHERE state = 'Succeeded') AS succeeded, \
             count(*) FILTER (WHERE state <> 'Succeeded') AS failed \
         FROM jobs_event \
         WHERE at >= $1 AND (state = 'Succeeded' OR message IS NOT NULL) \
         GROUP BY 1 ORDER BY 1",
    )
    .bind(since)
    .fetch_all(pool)
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

pub(super) async fn servers(pool: &PgPool) -> Result<Vec<ServerInfo>> {
    let rows = sqlx::query("SELECT * FROM jobs_server ORDER BY name, id")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(ServerInfo {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                host: row.try_get("host")?,
                pid: row.try_get::<i64, _>("pid")?.try_into().unwrap_or(0),
                workers: uint(row.try_get("workers")?),
                running: uint(row.try_get("running")?),
                started_at: row.try_get("started_at")?,
                heartbeat_at: row.try_get("heartbeat_at")?,
            })
        })
        .collect()
}
