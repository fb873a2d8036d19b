//! PostgreSQL storage: many servers on one database.
//!
//! Each operation is one statement where it can be, so it costs one round trip and one
//! commit: a claim picks rows with `FOR UPDATE SKIP LOCKED`, updates them and writes their
//! history in one `WITH`; a batch of results travels as arrays through `UNNEST`.
//!
//! Statements that update many `Processing` rows (results, heartbeats, release) lock them
//! in id order first. Without that, a server's heartbeat and its own result batch (or
//! another server's rescue) could lock the same rows in opposite orders and deadlock.

mod admin;
mod listener;
mod progress;
mod recurring;

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use self::listener::{CHANNEL, Wakeups};
use super::migrations::{self, Migration};
use super::{
    ClaimRequest, ClaimedJob, Completion, ExpiredJob, FireRequest, Fired, LogLine, NewJob,
    ProgressUpdate, QueueSelector, ServerRow, Storage, failure_summary, stored_error,
    stored_failure, stored_json,
};
use crate::record::{HistoryEntry, JobInfo, JobQuery, JobSummary, ServerInfo, ThroughputPoint};
use crate::recurring::{NewRecurring, RecurringInfo};
use crate::{Error, JobId, JobState, Result};

/// Makes the surrounding transaction commit without waiting for its WAL to reach the
/// disk; part of the statement, so that a claim or a batch of results stays one round
/// trip. For claims and results only, never for enqueues, whose caller was told the job
/// is stored.
///
/// What a crash can lose this way is the last few hundred milliseconds of such commits
/// (never a part of one, and never one that a later durable commit depends on: the WAL
/// is flushed in order). A lost claim puts the job back to `Enqueued` or `Scheduled`, so
/// it runs again; a lost result leaves it `Processing` under its old owner until the
/// lease runs out and the rescue counts the attempt as failed and retries it. Both are
/// exactly what a crash of the server a moment earlier does (results wait in memory for
/// their batch), and both keep the documented guarantee: every job runs at least once.
/// In exchange a claim does not wait for a disk flush, which on a slow disk bounded a
/// server to a few hundred claims per second.
const ASYNC_COMMIT: &str = "SELECT set_config('synchronous_commit', 'off', true)";

/// A pooled connection idle this long is pinged before it is used again.
const IDLE_BEFORE_PING: std::time::Duration = std::time::Duration::from_secs(5);

/// Key of the advisory lock that serializes migrations across processes.
const MIGRATION_LOCK: i64 = 0x6a6f_6273_5f6d_6967; // "jobs_mig"

#[derive(Debug, Clone)]
pub(crate) struct PgStorage {
    pool: PgPool,
    wakeups: Arc<Wakeups>,
}

impl PgStorage {
    /// Connects a pool to the database named by `url`.
    pub(crate) async fn connect(url: &str) -> Result<Self> {
        let mut options: PgConnectOptions = url.parse()?;
        if options.get_application_name().is_none() {
            options = options.application_name("jobs");
        }
        // A ping before every use costs each statement a second round trip. Only a
        // connection idle for a while is checked: it may have been cut (a restart of the
        // server, a proxy's idle timeout) while nobody used it. One that broke while in
        // use is closed when it comes back, after sqlx's check on release.
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_BEFORE_PING {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self::from_pool(pool))
    }

    /// Uses the application's pool.
    pub(crate) fn from_pool(pool: PgPool) -> Self {
        Self {
            wakeups: Arc::new(Wakeups::new(&pool)),
            pool,
        }
    }

    /// Changes whenever any process may have enqueued jobs on this database.
    pub(crate) fn wakeups(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.wakeups.subscribe())
    }
}

/// PostgreSQL `text` cannot hold NUL; a NUL in an error message or display name must not
/// make the write fail (a result that cannot be written would be retried forever).
fn text(value: &str) -> Cow<'_, str> {
    if value.contains('\0') {
        Cow::Owned(value.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(value)
    }
}

fn int(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

fn uint(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

fn job_state(row: &PgRow, column: &str) -> Result<JobState> {
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|error: crate::UnknownState| Error::Database(sqlx::Error::Decode(error.into())))
}

fn attempt(row: &PgRow) -> Result<u32> {
    Ok(uint(row.try_get("attempt")?))
}

fn max_retries(row: &PgRow) -> Result<Option<u32>> {
    Ok(row
        .try_get::<Option<i64>, _>("max_retries")?
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
}

fn summary(row: &PgRow) -> Result<JobSummary> {
    Ok(JobSummary {
        id: row.try_get::<Uuid, _>("id")?.into(),
        name: row.try_get("name")?,
        display_name: row.try_get("display_name")?,
        state: job_state(row, "state")?,
        queue: row.try_get("queue")?,
        attempt: attempt(row)?,
        run_at: row.try_get("run_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        labels: progress::labels(row)?,
        progress: progress::progress(row)?,
    })
}

/// The statements that insert jobs, write their history (for the rows they created)
/// and notify listeners: from arrays through `UNNEST`, or one job from scalars (which
/// PostgreSQL plans and runs faster), each with or without `ON CONFLICT (id) DO
/// NOTHING`. Parameters: $1 id, $2 name, $3 display name, $4 payload, $5 state, $6 queue,
/// $7 priority, $8 run at, $9 retries, $10 created at, $11 channel, $12 recurring id,
/// $13 parent id, $14 on failure, $15 labels.
static INSERTS: LazyLock<[String; 4]> = LazyLock::new(|| {
    let arrays = "SELECT id, name, display_name, payload::json, state, queue, priority, \
             run_at, max_retries, recurring_id, parent_id, on_failure, labels::json, \
             created_at, created_at \
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::text[], $7::int4[], $8::timestamptz[], $9::int8[], $10::timestamptz[], \
             $12::text[], $13::uuid[], $14::bool[], $15::text[]) \
             AS new (id, name, display_name, payload, state, queue, priority, run_at, \
                 max_retries, created_at, recurring_id, parent_id, on_failure, labels)";
    let one = "VALUES ($1::uuid, $2::text, $3::text, $4::text::json, $5::text, $6::text, \
             $7::int4, $8::timestamptz, $9::int8, $12::text, $13::uuid, $14::bool, \
             $15::text::json, $10::timestamptz, $10::timestamptz)";
    let statement = |source: &str, conflict: &str| {
        format!(
            "WITH inserted AS ( \
                 INSERT INTO jobs_job (id, name, display_name, payload, state, queue, \
                     priority, run_at, max_retries, recurring_id, parent_id, on_failure, \
                     labels, created_at, updated_at) \
                 {source} {conflict} \
                 RETURNING id, state, created_at \
             ), history AS ( \
                 INSERT INTO jobs_event (job_id, at, state, attempt) \
                 SELECT id, created_at, state, 0 FROM inserted \
             ) \
             SELECT pg_notify($11, '') FROM (SELECT 1 FROM inserted LIMIT 1) AS any_inserted"
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

/// Inserts jobs on `conn` in one statement that also writes their history (for the rows
/// it created; an existing id is skipped) and notifies listeners when the surrounding
/// transaction commits. Used by the storage and by transactional enqueue.
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
    for job in jobs {
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
        .execute(conn)
        .await?;
    Ok(())
}

impl Storage for PgStorage {
    async fn migrate(&self) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // Many nodes booting at once: the first migrates, the others wait, then find
        // every version applied.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS jobs_migration (
                version bigint PRIMARY KEY,
                description text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .execute(&mut *tx)
        .await?;
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM jobs_migration")
            .fetch_all(&mut *tx)
            .await?;
        for Migration {
            version,
            description,
            sql,
        } in migrations::POSTGRES
        {
            if applied.contains(version) {
                continue;
            }
            sqlx::Executor::execute(&mut *tx, *sql).await?;
            sqlx::query("INSERT INTO jobs_migration (version, description) VALUES ($1, $2)")
                .bind(version)
                .bind(description)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn jobs_insert(&self, jobs: &[NewJob]) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        jobs_insert_with(&mut conn, jobs).await
    }

    async fn job_get(&self, id: JobId) -> Result<Option<JobInfo>> {
        let Some(row) = sqlx::query(
            "SELECT id, name, display_name, payload::text AS payload, state, queue, priority, \
                 attempt, max_retries, run_at, owner, last_error, created_at, updated_at, \
                 labels::text AS labels, parent_id, progress_done, progress_total \
             FROM jobs_job WHERE id = $1",
        )
        .bind(id.as_uuid())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let events = sqlx::query(
            "SELECT at, state, attempt, server, message, sources::text AS sources \
             FROM jobs_event WHERE job_id = $1 ORDER BY seq",
        )
        .bind(id.as_uuid())
        .fetch_all(&self.pool)
        .await?;
        let mut history = Vec::with_capacity(events.len());
        for event in &events {
            let message: Option<String> = event.try_get("message")?;
            let sources: Option<String> = event.try_get("sources")?;
            history.push(HistoryEntry {
                at: event.try_get("at")?,
                state: job_state(event, "state")?,
                attempt: attempt(event)?,
                server: event.try_get("server")?,
                error: stored_error(message, sources),
            });
        }
        let logs = progress::logs(&self.pool, id).await?;
        let payload: String = row.try_get("payload")?;
        Ok(Some(JobInfo {
            id,
            name: row.try_get("name")?,
            display_name: row.try_get("display_name")?,
            payload: stored_json(payload),
            state: job_state(&row, "state")?,
            queue: row.try_get("queue")?,
            priority: row.try_get("priority")?,
            attempt: attempt(&row)?,
            max_retries: max_retries(&row)?,
            run_at: row.try_get("run_at")?,
            owner: row.try_get("owner")?,
            last_error: row.try_get("last_error")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            history,
            labels: progress::labels(&row)?,
            parent_id: row
                .try_get::<Option<Uuid>, _>("parent_id")?
                .map(JobId::from),
            progress: progress::progress(&row)?,
            logs,
        }))
    }

    async fn job_delete(&self, id: JobId, now: DateTime<Utc>) -> Result<bool> {
        // The final SELECT reads the statement's snapshot, from before the update: it
        // finds the row whether or not this statement deleted it.
        let exists: bool = sqlx::query_scalar(
            "WITH RECURSIVE doomed AS ( \
                 SELECT id FROM jobs_job WHERE id = $1 AND state <> 'Deleted' \
                 UNION SELECT child.id FROM jobs_job AS child \
                     JOIN doomed ON child.parent_id = doomed.id WHERE child.state = 'Awaiting' \
             ), deleted AS ( \
                 UPDATE jobs_job SET state = 'Deleted', lease_until = NULL, updated_at = $2 \
                 WHERE id IN (SELECT id FROM doomed) RETURNING id, attempt \
             ), history AS ( \
                 INSERT INTO jobs_event (job_id, at, state, attempt) \
                 SELECT id, $2, 'Deleted', attempt FROM deleted \
             ) \
             SELECT EXISTS (SELECT 1 FROM deleted) OR EXISTS (SELECT 1 FROM jobs_job WHERE id = $1)",
        )
        .bind(id.as_uuid())
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(exists)
    }

    async fn jobs_list(&self, query: &JobQuery) -> Result<Vec<JobSummary>> {
        let mut select = QueryBuilder::<Postgres>::new(
            "SELECT id, name, display_name, state, queue, attempt, run_at, created_at, updated_at, \
                 labels::text AS labels, progress_done, progress_total \
             FROM jobs_job WHERE true",
        );
        admin::push_filters(&mut select, query);
        if let Some(after) = query.after {
            select.push(" AND id < ").push_bind(after.as_uuid());
        }
        select
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(query.limit.min(1000)));
        let rows = select.build().fetch_all(&self.pool).await?;
        rows.iter().map(summary).collect()
    }

    async fn job_requeue(&self, id: JobId, now: DateTime<Utc>) -> Result<bool> {
        let target = admin::Target::One(id);
        Ok(admin::change_state(&self.pool, target, JobState::Enqueued, now).await? > 0)
    }

    async fn jobs_requeue_matching(&self, query: &JobQuery, now: DateTime<Utc>) -> Result<u64> {
        let target = admin::Target::Matching(query);
        admin::change_state(&self.pool, target, JobState::Enqueued, now).await
    }

    async fn jobs_delete_matching(&self, query: &JobQuery, now: DateTime<Utc>) -> Result<u64> {
        let target = admin::Target::Matching(query);
        admin::change_state(&self.pool, target, JobState::Deleted, now).await
    }

    async fn jobs_throughput(&self, since: DateTime<Utc>) -> Result<Vec<ThroughputPoint>> {
        admin::throughput(&self.pool, since).await
    }

    async fn servers_list(&self) -> Result<Vec<ServerInfo>> {
        admin::servers(&self.pool).await
    }

    async fn logs_insert(&self, lines: &[LogLine]) -> Result<()> {
        progress::logs_insert(&self.pool, lines).await
    }

    async fn progress_update(&self, updates: &[ProgressUpdate]) -> Result<()> {
        progress::progress_update(&self.pool, updates).await
    }

    async fn step_get(&self, job_id: JobId, name: &str) -> Result<Option<String>> {
        progress::step_get(&self.pool, job_id, name).await
    }

    async fn step_put(
        &self,
        job_id: JobId,
        name: &str,
        value: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        progress::step_put(&self.pool, job_id, name, value, at).await
    }

    async fn jobs_deleted_among(&self, ids: &[JobId]) -> Result<Vec<JobId>> {
        progress::deleted_among(&self.pool, ids).await
    }

    async fn recurring_upsert(&self, recurring: &NewRecurring, now: DateTime<Utc>) -> Result<()> {
        recurring::upsert(&self.pool, recurring, now).await
    }

    async fn recurring_disable_missing(
        &self,
        declared: &[String],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        recurring::disable_missing(&self.pool, declared, now).await
    }

    async fn recurring_get(&self, id: &str) -> Result<Option<RecurringInfo>> {
        recurring::get(&self.pool, id).await
    }

    async fn recurring_list(&self) -> Result<Vec<RecurringInfo>> {
        recurring::list(&self.pool).await
    }

    async fn recurring_delete(&self, id: &str) -> Result<bool> {
        recurring::delete(&self.pool, id).await
    }

    async fn recurring_set_enabled(
        &self,
        id: &str,
        enabled: bool,
        next_run_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        recurring::set_enabled(&self.pool, id, enabled, next_run_at, now).await
    }

    async fn recurring_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<RecurringInfo>> {
        recurring::due(&self.pool, now, limit).await
    }

    async fn recurring_next_run_at(&self) -> Result<Option<DateTime<Utc>>> {
        recurring::next_run_at(&self.pool).await
    }

    async fn recurring_fire(&self, request: FireRequest<'_>) -> Result<Fired> {
        recurring::fire(&self.pool, request).await
    }

    async fn jobs_count(&self) -> Result<Vec<(JobState, u64)>> {
        let rows = sqlx::query("SELECT state, count(*) AS n FROM jobs_job GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let n: i64 = row.try_get("n")?;
                Ok((job_state(row, "state")?, u64::try_from(n).unwrap_or(0)))
            })
            .collect()
    }

    async fn jobs_claim(&self, request: ClaimRequest<'_>) -> Result<Vec<ClaimedJob>> {
        let (queue_filter, queues): (&str, Vec<String>) = match request.queues {
            QueueSelector::All => ("", Vec::new()),
            QueueSelector::Only(queue) => (" AND queue = ANY($5)", vec![queue.to_owned()]),
            QueueSelector::AllExcept(queues) => (" AND NOT (queue = ANY($5))", queues.to_vec()),
        };
        let rows = sqlx::query(&format!(
            "WITH async_commit AS ({ASYNC_COMMIT}), picked AS ( \
                 SELECT id FROM jobs_job \
                 WHERE state IN ('Enqueued', 'Scheduled') AND run_at <= $3{queue_filter} \
                 ORDER BY priority DESC, run_at \
                 LIMIT $4 \
                 FOR UPDATE SKIP LOCKED \
             ), claimed AS ( \
                 UPDATE jobs_job AS job SET state = 'Processing', attempt = job.attempt + 1, \
                     owner = $1, lease_until = $2, updated_at = $3 \
                 FROM picked WHERE job.id = picked.id \
                 RETURNING job.id, job.name, job.payload, job.attempt, job.max_retries, \
                     job.priority, job.run_at, job.queue \
             ), history AS ( \
                 INSERT INTO jobs_event (job_id, at, state, attempt, server) \
                 SELECT id, $3, 'Processing', attempt, $1 FROM claimed \
             ) \
             SELECT id, name, payload::text AS payload, attempt, max_retries, queue, run_at \
             FROM claimed, async_commit \
             ORDER BY priority DESC, run_at",
        ))
        .bind(request.owner)
        .bind(request.lease_until)
        .bind(request.now)
        .bind(i64::from(request.limit))
        .bind(queues)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ClaimedJob {
                    id: row.try_get::<Uuid, _>("id")?.into(),
                    name: row.try_get("name")?,
                    payload: row.try_get("payload")?,
                    attempt: attempt(row)?,
                    max_retries: max_retries(row)?,
                    queue: row.try_get("queue")?,
                    run_at: row.try_get("run_at")?,
                })
            })
            .collect()
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
        let (mut run_ats, mut last_errors, mut messages, mut sources, mut ats) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for completion in completions {
            let (state, run_at, failure) = completion.outcome.ending();
            let (message, source_list) = failure.map(stored_failure).unzip();
            ids.push(completion.id.as_uuid());
            owners.push(completion.owner.as_str());
            attempts.push(int(completion.attempt));
            states.push(state.as_str());
            run_ats.push(run_at);
            last_errors.push(failure.map(|failure| text(&failure_summary(failure)).into_owned()));
            messages.push(message.map(|message| text(&message).into_owned()));
            sources.push(source_list);
            ats.push(completion.at);
        }
        // `fenced` keeps the results whose fence holds and locks their rows in id order
        // (see the module docs); only the rows it updated get a history row.
        sqlx::query(&format!(
            "WITH fenced AS ( \
                 SELECT done.* \
                 FROM UNNEST($1::uuid[], $2::text[], $3::int4[], $4::text[], \
                     $5::timestamptz[], $6::text[], $7::text[], $8::text[], $9::timestamptz[]) \
                     WITH ORDINALITY AS done (id, owner, attempt, state, run_at, last_error, \
                         message, sources, at, ord) \
                 JOIN jobs_job AS job ON job.id = done.id \
                 WHERE job.owner = done.owner AND job.attempt = done.attempt \
                     AND job.state = 'Processing' \
                 ORDER BY job.id \
                 FOR UPDATE OF job \
             ), updated AS ( \
                 UPDATE jobs_job AS job SET state = fenced.state, \
                     run_at = COALESCE(fenced.run_at, job.run_at), \
                     last_error = COALESCE(fenced.last_error, job.last_error), \
                     owner = NULL, lease_until = NULL, updated_at = fenced.at \
                 FROM fenced WHERE job.id = fenced.id \
                 RETURNING fenced.* \
             ), history AS ( \
                 INSERT INTO jobs_event (job_id, at, state, attempt, server, message, sources) \
                 SELECT id, at, state, attempt, owner, message, sources::json \
                 FROM updated ORDER BY ord \
             ), released AS ( \
                 UPDATE jobs_job AS child SET state = 'Enqueued', run_at = updated.at, \
                     updated_at = updated.at \
                 FROM updated WHERE child.parent_id = updated.id AND child.state = 'Awaiting' \
                     AND ((updated.state = 'Succeeded' AND NOT child.on_failure) \
                         OR (updated.state = 'Failed' AND child.on_failure)) \
                 RETURNING child.id, child.attempt, updated.at \
             ), dropped AS ( \
                 UPDATE jobs_job AS child SET state = 'Deleted', updated_at = updated.at \
                 FROM updated WHERE child.parent_id = updated.id AND child.state = 'Awaiting' \
                     AND updated.state = 'Succeeded' AND child.on_failure \
                 RETURNING child.id, child.attempt, updated.at \
             ), child_history AS ( \
                 INSERT INTO jobs_event (job_id, at, state, attempt) \
                 SELECT id, at, 'Enqueued', attempt FROM released \
                 UNION ALL SELECT id, at, 'Deleted', attempt FROM dropped \
             ) \
             SELECT ({ASYNC_COMMIT}) AS async_commit, \
                 (SELECT pg_notify($10, '') FROM released LIMIT 1) AS notified",
        ))
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn jobs_next_run_at(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(sqlx::query_scalar(
            "SELECT min(run_at) FROM jobs_job WHERE state IN ('Enqueued', 'Scheduled')",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    async fn jobs_release(
        &self,
        owner: &str,
        only: Option<&[JobId]>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let only: Option<Vec<Uuid>> = only.map(|ids| ids.iter().map(|id| id.as_uuid()).collect());
        let mut tx = self.pool.begin().await?;
        let released: i64 = sqlx::query_scalar(
            "WITH mine AS ( \
                 SELECT id FROM jobs_job WHERE owner = $1 AND state = 'Processing' \
                     AND ($3::uuid[] IS NULL OR id = ANY($3::uuid[])) \
                 ORDER BY id FOR UPDATE \
             ), released AS ( \
                 UPDATE jobs_job AS job SET state = 'Enqueued', attempt = job.attempt - 1, \
                     owner = NULL, lease_until = NULL, run_at = $2, updated_at = $2 \
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
        .fetch_one(&mut *tx)
        .await?;
        if released > 0 {
            // Released so that another server runs them at once: tell the servers.
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANNEL)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(u64::try_from(released).unwrap_or(0))
    }

    async fn jobs_expired(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<ExpiredJob>> {
        let rows = sqlx::query(
            "SELECT id, owner, attempt, max_retries FROM jobs_job \
             WHERE state = 'Processing' AND lease_until < $1 LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ExpiredJob {
                    id: row.try_get::<Uuid, _>("id")?.into(),
                    owner: row
                        .try_get::<Option<String>, _>("owner")?
                        .unwrap_or_default(),
                    attempt: attempt(row)?,
                    max_retries: max_retries(row)?,
                })
            })
            .collect()
    }

    async fn jobs_prune(
        &self,
        succeeded_before: DateTime<Utc>,
        deleted_before: DateTime<Utc>,
    ) -> Result<u64> {
        // SKIP LOCKED: rows another server is pruning right now are its business.
        let deleted: i64 = sqlx::query_scalar(
            "WITH doomed AS ( \
                 SELECT id FROM jobs_job \
                 WHERE (state = 'Succeeded' AND updated_at < $1) \
                     OR (state = 'Deleted' AND updated_at < $2) \
                 FOR UPDATE SKIP LOCKED \
             ), history AS ( \
                 DELETE FROM jobs_event WHERE job_id IN (SELECT id FROM doomed) \
             ), logs AS ( \
                 DELETE FROM jobs_log WHERE job_id IN (SELECT id FROM doomed) \
             ), steps AS ( \
                 DELETE FROM jobs_step WHERE job_id IN (SELECT id FROM doomed) \
             ), jobs AS ( \
                 DELETE FROM jobs_job WHERE id IN (SELECT id FROM doomed) RETURNING 1 \
             ) \
             SELECT count(*) FROM jobs",
        )
        .bind(succeeded_before)
        .bind(deleted_before)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(deleted).unwrap_or(0))
    }

    async fn server_heartbeat(
        &self,
        server: &ServerRow,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "WITH server AS ( \
                 INSERT INTO jobs_server (id, name, host, pid, workers, running, started_at, \
                     heartbeat_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (id) DO UPDATE SET running = excluded.running, \
                     heartbeat_at = excluded.heartbeat_at \
             ), mine AS ( \
                 SELECT id FROM jobs_job WHERE owner = $1 AND state = 'Processing' \
                 ORDER BY id FOR UPDATE \
             ) \
             UPDATE jobs_job AS job SET lease_until = $9 FROM mine WHERE job.id = mine.id",
        )
        .bind(&server.id)
        .bind(text(&server.name))
        .bind(text(&server.host))
        .bind(i64::from(server.pid))
        .bind(int(server.workers))
        .bind(int(server.running))
        .bind(server.started_at)
        .bind(now)
        .bind(lease_until)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn server_remove(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM jobs_server WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn servers_prune(&self, dead_before: DateTime<Utc>) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM jobs_server WHERE heartbeat_at < $1")
                .bind(dead_before)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }
}
