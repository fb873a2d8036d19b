//! The claim on PostgreSQL: one statement, a pick function's rows moved to `Processing`
//! with their history rows and, with a rate, the record of the claim's starts.

use super::PgStorage;
use super::rows::micros_of;
use crate::Result;
use crate::storage::rows::claimed_job;
use crate::storage::{ClaimRequest, ClaimedJob, QueueSelector};

/// The claim's pick of any queues (`$8` the mode), and of a capped queue (`$8` its
/// global limit), taking at most `limit` rows.
fn pick(limit: &str) -> String {
    format!("jobs_claim_pick($3, {limit}, $8, $5, $7)")
}

fn pick_capped(limit: &str) -> String {
    format!("jobs_claim_pick_capped($3, {limit}, $5[1], $8, $7)")
}

/// The pick of a server that runs keyed jobs (`$8` the mode, `$9` the most keyed jobs,
/// `$10` a capped queue's global limit or NULL, `$11` the claimer's clock offset in
/// microseconds, for the windows of keys' rates).
fn pick_keyed(limit: &str) -> String {
    format!("jobs_claim_pick_keyed($3, {limit}, $9, $8, $5, $7, $10, $11)")
}

pub(super) async fn jobs_claim(
    storage: &PgStorage,
    request: ClaimRequest<'_>,
) -> Result<Vec<ClaimedJob>> {
    // With a rate, the most the claim takes is what the scope's window leaves, counted
    // under the scope's lock (migration 0028) before the pick runs: the pick reads it
    // as an argument, a subquery PostgreSQL evaluates before the function. Its window
    // and the starts it records are on the database's clock plus the claimer's offset,
    // as leases are, so servers whose clocks disagree hold one rate.
    let rated = request.rate.is_some();
    let limit = if rated { "(SELECT n FROM room)" } else { "$4" };
    // `$8` is the pick's mode, or a capped queue's global limit.
    let (mut pick, mut mode, queues): (String, i32, Vec<String>) = match request.queues {
        QueueSelector::All => (pick(limit), 0, Vec::new()),
        QueueSelector::Only(queue) => (pick(limit), 1, vec![queue.to_owned()]),
        QueueSelector::Among(queues) => (pick(limit), 1, queues.to_vec()),
        QueueSelector::AllExcept(queues) => (pick(limit), 2, queues.to_vec()),
        QueueSelector::Capped { queue, global } => (
            pick_capped(limit),
            i32::try_from(global).unwrap_or(i32::MAX),
            vec![queue.to_owned()],
        ),
    };
    // A server that runs keyed jobs picks through the one function that knows keys
    // and their rates (migration 0031), which returns up to twice the limit: the claim
    // takes the first `limit`, and records the starts of each rated key among them
    // while the function's lock on the key is held. The others' claims read no key.
    let mut keyed = None;
    let mut cut = String::new();
    let mut returned_keys = "";
    let mut key_started = "";
    if request.keyed {
        let global = match request.queues {
            QueueSelector::Capped { global, .. } => {
                mode = 1;
                Some(i64::from(global))
            }
            _ => None,
        };
        keyed = Some((i64::from(request.start_now.min(request.limit)), global));
        pick = pick_keyed(limit);
        cut = format!("AND ranked.n <= {limit}");
        returned_keys = ", job.concurrency_key, job.rate_count";
        key_started = ", key_started AS ( \
                 INSERT INTO jobs_rate_start (scope, started_at, starts) \
                 SELECT 'key:' || concurrency_key, \
                     clock_timestamp() + $11 * interval '1 microsecond', count(*) \
                 FROM claimed WHERE rate_count IS NOT NULL GROUP BY concurrency_key \
             )";
    }
    // The rate's parameters follow the keyed ones.
    let first = if request.keyed { 12 } else { 9 };
    let (room, started) = if rated {
        (
            format!(
                "room AS (SELECT least($4, jobs_rate_room(${first}, ${}, ${}, ${})) AS n), ",
                first + 3,
                first + 1,
                first + 2
            ),
            format!(
                ", started AS ( \
                     INSERT INTO jobs_rate_start (scope, started_at, starts) \
                     SELECT ${first}, clock_timestamp() + ${} * interval '1 microsecond', \
                         count(*) \
                     FROM claimed HAVING count(*) > 0 \
                 )",
                first + 3
            ),
        )
    } else {
        (String::new(), String::new())
    };
    // The lease runs from the database's clock (see the module docs of `storage`).
    let lease = micros_of(request.offset + (request.lease_until - request.now));
    // The pick is a function whose plan cannot flip with the statistics (see
    // migration 0015); a capped queue's also serializes its claims and counts
    // (migration 0017).
    let commit_mode = storage.commit_mode();
    let claim = format!(
        "WITH async_commit AS ({commit_mode}), {room}picked AS ( \
             SELECT id, priority, run_at FROM {pick} \
         ), ranked AS ( \
             SELECT id, row_number() OVER (ORDER BY priority DESC, run_at) AS n FROM picked \
         ), claimed AS ( \
             UPDATE jobs_job AS job SET state = 'Processing', attempt = job.attempt + 1, \
                 token = job.token + 1, owner = $1, \
                 lease_until = clock_timestamp() + $2 * interval '1 microsecond', \
                 updated_at = $3, ahead = ranked.n > $6 \
             FROM ranked WHERE job.id = ranked.id {cut} \
             RETURNING job.id, job.name, job.payload, job.attempt, job.max_retries, \
                 job.run_at, job.queue, job.token, job.ahead, job.trace_context, \
                 ranked.n{returned_keys} \
         ), history AS ( \
             INSERT INTO jobs_event (job_id, at, state, attempt, server) \
             SELECT id, $3, 'Processing', attempt, $1 FROM claimed \
         ){started}{key_started} \
         SELECT id, name, payload::text AS payload, attempt, max_retries, queue, run_at, \
             token, ahead, trace_context \
         FROM claimed, async_commit \
         ORDER BY n",
    );
    let mut query = sqlx::query(&claim)
        .bind(request.owner)
        .bind(lease)
        .bind(request.now)
        .bind(i64::from(request.limit))
        .bind(queues)
        .bind(i64::from(request.start_now))
        .bind(request.names)
        .bind(mode);
    if let Some((most, global)) = keyed {
        query = query
            .bind(most)
            .bind(global)
            .bind(micros_of(request.offset));
    }
    if let Some(rate) = request.rate {
        query = query
            .bind(rate.scope)
            .bind(i64::from(rate.count))
            .bind(micros_of(rate.window))
            .bind(micros_of(request.offset));
    }
    let rows = query.fetch_all(&storage.pool).await?;
    rows.iter().map(claimed_job).collect()
}
