//! The claim on SQLite: one `UPDATE … RETURNING` that picks, counts and claims under
//! the write lock its statement takes; with a rate, or for a server with keyed jobs
//! (whose keys may have rates), inside a transaction that also records the claim's
//! starts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};

use super::rows::micros;
use super::{SqliteStorage, begin};
use crate::Result;
use crate::storage::rows::claimed_job;
use crate::storage::{ClaimRequest, ClaimedJob, QueueSelector, RateCap};

pub(super) async fn jobs_claim(
    storage: &SqliteStorage,
    request: ClaimRequest<'_>,
) -> Result<Vec<ClaimedJob>> {
    // One machine's database: the lease is on the server's clock, `lease_until`.
    let _ = request.offset;
    // Read before the write lock: a claim that finds no queue to read never holds it
    // (a server whose only backlog is in its limited queues asks this on every round).
    let queues = queues_to_read(&storage.reader, &request).await?;
    if queues.as_ref().is_some_and(Vec::is_empty) {
        return Ok(Vec::new());
    }
    let mut writer = storage.writer.lock().await?;
    let mut claim = claim_statement("", &request, queues.as_deref());
    if request.rate.is_none() && !request.keyed {
        let rows = claim.build().fetch_all(&mut *writer).await?;
        return rows.iter().map(claimed_job).collect();
    }
    // The counts in the claim's statement, the claim and the record of its starts
    // under one write lock: the claims of every process on the file take turns.
    let mut tx = begin(&mut writer).await?;
    if let Some(rate) = request.rate {
        let since = micros(request.now - rate.window);
        sqlx::query("DELETE FROM jobs_rate_start WHERE scope = ? AND started_at <= ?")
            .bind(rate.scope)
            .bind(since)
            .execute(&mut *tx)
            .await?;
    }
    let rows = claim.build().fetch_all(&mut *tx).await?;
    if let Some(rate) = request.rate
        && !rows.is_empty()
    {
        record_starts(&mut tx, rate.scope, request.now, rows.len()).await?;
    }
    if request.keyed {
        record_key_starts(&mut tx, &rows, request.now).await?;
    }
    tx.commit().await?;
    rows.iter().map(claimed_job).collect()
}

/// Records that a claim at `now` started `starts` jobs under `scope`.
async fn record_starts(
    tx: &mut SqliteConnection,
    scope: &str,
    now: DateTime<Utc>,
    starts: usize,
) -> Result<()> {
    sqlx::query("INSERT INTO jobs_rate_start (scope, started_at, starts) VALUES (?, ?, ?)")
        .bind(scope)
        .bind(micros(now))
        .bind(i64::try_from(starts).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Records the starts of each rated key among the claimed `rows` (one row per key),
/// and deletes the key's starts that left its window (the longest among the claimed
/// jobs of the key), in the claim's transaction.
async fn record_key_starts(
    tx: &mut SqliteConnection,
    rows: &[SqliteRow],
    now: DateTime<Utc>,
) -> Result<()> {
    // Key → (starts, longest window in ms).
    let mut keys: BTreeMap<String, (usize, i64)> = BTreeMap::new();
    for row in rows {
        let window: Option<i64> = row.try_get("rate_window_ms")?;
        let rated: Option<i64> = row.try_get("rate_count")?;
        let key: Option<String> = row.try_get("concurrency_key")?;
        if let (Some(key), Some(window), Some(_)) = (key, window, rated) {
            let entry = keys.entry(key).or_insert((0, window));
            entry.0 += 1;
            entry.1 = entry.1.max(window);
        }
    }
    for (key, (starts, window)) in keys {
        let scope = format!("key:{key}");
        sqlx::query("DELETE FROM jobs_rate_start WHERE scope = ? AND started_at <= ?")
            .bind(&scope)
            .bind(micros(now).saturating_sub(window.saturating_mul(1000)))
            .execute(&mut *tx)
            .await?;
        record_starts(tx, &scope, now, starts).await?;
    }
    Ok(())
}

/// The queues a claim reads, each through its own range of `jobs_job_queue_runnable`
/// (migration 26): those it names, or, for every queue but some, those that have
/// runnable jobs less the others (a loose scan of that index, one lookup per queue).
/// `None` for every queue, read in claim order through `jobs_job_runnable`. Through
/// that index alone, a claim of some queues walked every runnable job of the others
/// that came first in claim order: a paused or limited queue's whole backlog.
async fn queues_to_read(
    reader: &SqlitePool,
    request: &ClaimRequest<'_>,
) -> Result<Option<Vec<String>>> {
    Ok(match request.queues {
        QueueSelector::All => None,
        QueueSelector::Only(queue) | QueueSelector::Capped { queue, .. } => {
            Some(vec![queue.to_owned()])
        }
        QueueSelector::Among(queues) => Some(queues.to_vec()),
        QueueSelector::AllExcept(left_out) => {
            let present: Vec<String> = sqlx::query_scalar(QUEUES_WITH_RUNNABLE_JOBS)
                .fetch_all(reader)
                .await?;
            Some(
                present
                    .into_iter()
                    .filter(|queue| !left_out.contains(queue))
                    .collect(),
            )
        }
    })
}

/// The queues that have runnable jobs: from one to the next through the index on
/// (queue, priority, run_at), never reading a queue's jobs.
const QUEUES_WITH_RUNNABLE_JOBS: &str = "WITH RECURSIVE present (queue) AS ( \
        SELECT (SELECT queue FROM jobs_job INDEXED BY jobs_job_queue_runnable \
            WHERE state IN ('Enqueued', 'Scheduled') ORDER BY queue LIMIT 1) \
        UNION ALL \
        SELECT (SELECT queue FROM jobs_job INDEXED BY jobs_job_queue_runnable \
            WHERE state IN ('Enqueued', 'Scheduled') AND queue > present.queue \
            ORDER BY queue LIMIT 1) \
        FROM present WHERE present.queue IS NOT NULL \
    ) SELECT queue FROM present WHERE queue IS NOT NULL";

/// The claim's one statement (after `prefix`, for a test's `EXPLAIN QUERY PLAN`): the
/// jobs of `queues` (`None`: of every queue), picked, counted and claimed.
fn claim_statement<'a>(
    prefix: &str,
    request: &ClaimRequest<'a>,
    queues: Option<&'a [String]>,
) -> QueryBuilder<'a, Sqlite> {
    // One statement, atomic on its own. The attempt's start is said by the row
    // (`started_at`, and `started_token`, the new token: migration 33), not by a
    // history row. `picked` numbers the rows in claim order (only the few it picked):
    // all but the first `start_now` are claimed ahead.
    let mut claim = QueryBuilder::<Sqlite>::new(prefix);
    claim
        .push(
            "UPDATE jobs_job SET state = 'Processing', attempt = attempt + 1, \
             token = token + 1, started_token = token + 1, owner = ",
        )
        .push_bind(request.owner)
        .push(", lease_until = ")
        .push_bind(micros(request.lease_until))
        .push(", updated_at = ")
        .push_bind(micros(request.now))
        .push(", started_at = ")
        .push_bind(micros(request.now))
        .push(", ahead = picked.n > ")
        .push_bind(i64::from(request.start_now))
        .push(
            " FROM (SELECT id, row_number() OVER (ORDER BY priority DESC, run_at) AS n \
             FROM (",
        );
    if request.keyed {
        // The jobs without a key as below, then those of each key with room: the
        // first `concurrency - running` of the key in claim order. The statement
        // holds the write lock from its start, so the counts hold for every
        // process on the file.
        claim.push("SELECT id, priority, run_at FROM (");
        push_unkeyed(&mut claim, request, queues, "concurrency_key IS NULL AND ");
        // A key's rate leaves its count less the key's starts within the rate's
        // window (`jobs_rate_start`, scope `key:<key>`); a job with a rate and no
        // concurrency may run with any number of its key, one with neither with none
        // (never claimed, as before rates).
        claim.push(
            ") UNION ALL SELECT id, priority, run_at FROM (SELECT id, priority, run_at \
             FROM (SELECT id, priority, run_at, concurrency_key, \
                 coalesce(concurrency, CASE WHEN rate_count IS NOT NULL \
                     THEN 2147483647 END) AS concurrency, \
                 rate_count, rate_window_ms, \
                 row_number() OVER (PARTITION BY concurrency_key \
                     ORDER BY priority DESC, run_at, id) AS rank \
             FROM jobs_job INDEXED BY jobs_job_keyed \
             WHERE concurrency_key IS NOT NULL AND ",
        );
        push_runnable(&mut claim, request);
        claim
            .push(
                ") AS keyed WHERE rank <= concurrency - (SELECT count(*) \
                     FROM jobs_job AS running INDEXED BY jobs_job_processing_key \
                     WHERE running.state = 'Processing' \
                         AND running.concurrency_key = keyed.concurrency_key) \
                 AND (rate_count IS NULL OR (rank <= rate_count \
                     AND rank <= rate_count - (SELECT coalesce(sum(starts), 0) \
                         FROM jobs_rate_start AS start \
                         WHERE start.scope = 'key:' || keyed.concurrency_key \
                             AND start.started_at > ",
            )
            .push_bind(micros(request.now))
            .push(
                " - rate_window_ms * 1000))) \
                 ORDER BY priority DESC, run_at LIMIT ",
            );
        push_limit(&mut claim, request, request.start_now.min(request.limit));
        claim.push(") ORDER BY priority DESC, run_at LIMIT ");
        push_limit(&mut claim, request, request.limit);
    } else {
        push_unkeyed(&mut claim, request, queues, "");
    }
    claim.push(
        ")) AS picked WHERE jobs_job.id = picked.id \
             RETURNING id, name, payload, attempt, max_retries, queue, run_at, token, ahead, \
             trace_context",
    );
    if request.keyed {
        claim.push(", concurrency_key, rate_count, rate_window_ms");
    }
    claim
}

/// The pick of runnable rows meeting `condition` (empty, or ending in `AND`): of every
/// queue through `jobs_job_runnable`, or of each of `queues` through its range of
/// `jobs_job_queue_runnable`, merged in claim order.
fn push_unkeyed<'a>(
    claim: &mut QueryBuilder<'a, Sqlite>,
    request: &ClaimRequest<'a>,
    queues: Option<&'a [String]>,
    condition: &'static str,
) {
    let Some(queues) = queues else {
        claim
            .push("SELECT id, priority, run_at FROM jobs_job INDEXED BY jobs_job_runnable WHERE ")
            .push(condition);
        push_runnable(claim, request);
        claim.push(" ORDER BY priority DESC, run_at LIMIT ");
        push_limit(claim, request, request.limit);
        return;
    };
    claim.push("SELECT id, priority, run_at FROM (");
    for (i, queue) in queues.iter().enumerate() {
        if i > 0 {
            claim.push(" UNION ALL ");
        }
        claim
            .push(
                "SELECT * FROM (SELECT id, priority, run_at \
                 FROM jobs_job INDEXED BY jobs_job_queue_runnable WHERE ",
            )
            .push(condition)
            .push("queue = ")
            .push_bind(queue.as_str())
            .push(" AND ");
        push_due(claim, request);
        claim.push(" ORDER BY priority DESC, run_at LIMIT ");
        push_limit(claim, request, request.limit);
        claim.push(")");
    }
    claim.push(") ORDER BY priority DESC, run_at LIMIT ");
    push_limit(claim, request, request.limit);
}

/// The conditions of a runnable row the claim may take: due, in the queues and of the
/// names it asks for.
fn push_runnable<'a>(claim: &mut QueryBuilder<'a, Sqlite>, request: &ClaimRequest<'a>) {
    push_due(claim, request);
    match request.queues {
        QueueSelector::All => {}
        QueueSelector::Only(queue) | QueueSelector::Capped { queue, .. } => {
            claim.push(" AND queue = ").push_bind(queue.to_owned());
        }
        QueueSelector::AllExcept(queues) | QueueSelector::Among(queues) => {
            let among = matches!(request.queues, QueueSelector::Among(_));
            claim.push(if among {
                " AND queue IN ("
            } else {
                " AND queue NOT IN ("
            });
            let mut names = claim.separated(", ");
            for queue in queues {
                names.push_bind(queue.clone());
            }
            claim.push(")");
        }
    }
}

/// Due, and of the names the claim asks for.
fn push_due<'a>(claim: &mut QueryBuilder<'a, Sqlite>, request: &ClaimRequest<'a>) {
    claim
        .push("state IN ('Enqueued', 'Scheduled') AND run_at <= ")
        .push_bind(micros(request.now));
    if let Some(names) = request.names {
        let names = serde_json::to_string(names).expect("names serialize");
        claim
            .push(" AND name IN (SELECT value FROM json_each(")
            .push_bind(names)
            .push("))");
    }
}

/// At most `limit` rows; of a capped queue no more than leaves `global` of it
/// `Processing`; with a rate, no more than leaves its scope's starts within the window
/// at its count. The statement holds the database's write lock from its start, so the
/// counts and the claim are one step for every process on the file.
fn push_limit(claim: &mut QueryBuilder<'_, Sqlite>, request: &ClaimRequest<'_>, limit: u32) {
    let capped = match request.queues {
        QueueSelector::Capped { queue, global } => Some((queue, global)),
        _ => None,
    };
    if capped.is_none() && request.rate.is_none() {
        claim.push_bind(i64::from(limit));
        return;
    }
    claim.push("max(0, min(").push_bind(i64::from(limit));
    if let Some((queue, global)) = capped {
        claim
            .push(", ")
            .push_bind(i64::from(global))
            .push(" - (SELECT count(*) FROM jobs_job WHERE state = 'Processing' AND queue = ")
            .push_bind(queue.to_owned())
            .push(")");
    }
    if let Some(RateCap {
        scope,
        count,
        window,
    }) = request.rate
    {
        claim
            .push(", ")
            .push_bind(i64::from(count))
            .push(" - (SELECT coalesce(sum(starts), 0) FROM jobs_rate_start WHERE scope = ")
            .push_bind(scope.to_owned())
            .push(" AND started_at > ")
            .push_bind(micros(request.now - window))
            .push(")");
    }
    claim.push("))");
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::{QUEUES_WITH_RUNNABLE_JOBS, claim_statement};
    use crate::storage::conformance::{TestDb, claim};
    use crate::storage::{ClaimRequest, QueueSelector};

    /// The steps of SQLite's plan for `sql` that read `jobs_job`.
    async fn reads(
        db: &TestDb,
        explained: &mut sqlx::QueryBuilder<'_, sqlx::Sqlite>,
    ) -> Vec<String> {
        let storage = db.sqlite_storage();
        let mut steps = super::super::query_plan(storage, explained.build()).await;
        steps.retain(|step| step.contains("jobs_job"));
        steps
    }

    /// A claim of some queues reads each through its own range of the queue index, so
    /// it never walks the jobs of the queues it leaves out (a paused queue's backlog);
    /// and the queues with runnable jobs are found one lookup each.
    #[tokio::test]
    async fn a_claim_of_some_queues_reads_each_queue_through_its_own_range() {
        let db = TestDb::sqlite().await;
        let queues = ["mail".to_owned(), "llm".to_owned()];
        for selector in [
            QueueSelector::Only("mail"),
            QueueSelector::Capped {
                queue: "mail",
                global: 5,
            },
            QueueSelector::Among(&queues),
        ] {
            let request = ClaimRequest {
                queues: selector,
                ..claim("s", Utc::now(), 100)
            };
            for keyed in [false, true] {
                let request = ClaimRequest { keyed, ..request };
                let wanted = match selector {
                    QueueSelector::Among(queues) => queues,
                    _ => &queues[..1],
                };
                let mut explained = claim_statement("EXPLAIN QUERY PLAN ", &request, Some(wanted));
                let steps = reads(&db, &mut explained).await;
                let picks: Vec<&String> = steps
                    .iter()
                    .filter(|step| step.contains("jobs_job_runnable"))
                    .collect();
                assert!(
                    picks.is_empty(),
                    "a pick through the index of every queue: {steps:?}"
                );
                let by_queue = steps
                    .iter()
                    .filter(|step| step.contains("USING INDEX jobs_job_queue_runnable (queue=?"))
                    .count();
                assert_eq!(by_queue, wanted.len(), "{steps:?}");
            }
        }
        let mut present = sqlx::QueryBuilder::new("EXPLAIN QUERY PLAN ");
        present.push(QUEUES_WITH_RUNNABLE_JOBS);
        let steps = reads(&db, &mut present).await;
        // The first queue (the index's first entry), then each next one by a search.
        assert_eq!(steps.len(), 2, "{steps:?}");
        assert!(
            steps
                .iter()
                .all(|step| step.contains("USING INDEX jobs_job_queue_runnable"))
        );
        assert!(steps[1].contains("(queue>?)"), "{steps:?}");
    }
}
