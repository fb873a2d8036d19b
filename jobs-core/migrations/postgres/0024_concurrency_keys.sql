-- Partitioned limits: a job may carry a concurrency key (rendered from its arguments by
-- `#[job(concurrency_key = "…")]`) and how many jobs of that key may be `Processing`
-- at once (`concurrency`). Migration 27 builds two indexes: the first keeps the count
-- of a key's `Processing` rows to those rows, the second holds the waiting keyed rows
-- by key in claim order.
ALTER TABLE jobs_job ADD COLUMN IF NOT EXISTS concurrency_key text;
ALTER TABLE jobs_job ADD COLUMN IF NOT EXISTS concurrency integer;

-- (Both are built CONCURRENTLY by migration 27.)

-- The pick of a server that runs keyed jobs. Claims of servers without keyed jobs keep
-- `jobs_claim_pick` (migration 0015) and `jobs_claim_pick_capped` (0017), which read no
-- key. This one takes, in claim order:
--   * jobs without a key, as `jobs_claim_pick` does (sorting off, for the same plan);
--   * of each key with room, at most `concurrency - running` jobs, and of all keys
--     together at most `p_keyed`. The keys that look like they have room are locked
--     first (transaction-scoped advisory locks, in the order of their lock keys, so
--     two claims never wait on each other in a circle); the count and the pick that
--     follow are statements of their own, whose snapshots, taken after the locks, see
--     every claim of those keys committed before. So two servers never both take the
--     last slot of a key, and claims of different keys do not wait for each other.
-- With `p_global` set, `p_queues[1]` is a capped queue, serialized and counted first
-- as `jobs_claim_pick_capped` does. The caller takes the first `p_limit` rows of what
-- this returns (up to twice that many) in claim order; the rest are unlocked at commit.
CREATE OR REPLACE FUNCTION jobs_claim_pick_keyed(
    p_now timestamptz,
    p_limit bigint,
    p_keyed bigint,
    p_mode integer,
    p_queues text[],
    p_names text[],
    p_global bigint
) RETURNS TABLE (id uuid, priority integer, run_at timestamptz)
LANGUAGE plpgsql
ROWS 1
SET enable_sort = off
AS $$
DECLARE
    v_limit bigint := p_limit;
    v_running bigint;
    v_keys text[];
    v_key text;
    v_ids uuid[];
BEGIN
    IF p_global IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('jobs_queue:' || p_queues[1], 0));
        SELECT count(*) INTO v_running FROM jobs_job AS job
        WHERE job.state = 'Processing' AND job.queue = p_queues[1];
        v_limit := least(v_limit, greatest(p_global - v_running, 0));
    END IF;
    IF v_limit <= 0 THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT job.id, job.priority, job.run_at FROM jobs_job AS job
    WHERE job.state IN ('Enqueued', 'Scheduled') AND job.run_at <= p_now
        AND job.concurrency_key IS NULL
        AND (p_mode = 0
            OR (p_mode = 1 AND job.queue = ANY (p_queues))
            OR (p_mode = 2 AND NOT (job.queue = ANY (p_queues))))
        AND (p_names IS NULL OR job.name = ANY (p_names))
    ORDER BY job.priority DESC, job.run_at
    LIMIT v_limit
    FOR UPDATE OF job SKIP LOCKED;
    IF least(v_limit, p_keyed) <= 0 THEN
        RETURN;
    END IF;
    -- The picks below sort a few rows; the ordered scan of the runnable index that
    -- sorting off would prefer reads every waiting row.
    SET LOCAL enable_sort = on;
    SELECT array_agg(waiting.concurrency_key
            ORDER BY hashtextextended('jobs_concurrency:' || waiting.concurrency_key, 0))
        INTO v_keys
    FROM (
        SELECT job.concurrency_key, max(job.concurrency) AS concurrency
        FROM jobs_job AS job
        WHERE job.state IN ('Enqueued', 'Scheduled') AND job.run_at <= p_now
            AND job.concurrency_key IS NOT NULL
            AND (p_mode = 0
                OR (p_mode = 1 AND job.queue = ANY (p_queues))
                OR (p_mode = 2 AND NOT (job.queue = ANY (p_queues))))
            AND (p_names IS NULL OR job.name = ANY (p_names))
        GROUP BY job.concurrency_key
    ) AS waiting
    WHERE waiting.concurrency > (SELECT count(*) FROM jobs_job AS running
        WHERE running.state = 'Processing'
            AND running.concurrency_key = waiting.concurrency_key);
    IF v_keys IS NULL THEN
        RETURN;
    END IF;
    FOREACH v_key IN ARRAY v_keys LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended('jobs_concurrency:' || v_key, 0));
    END LOOP;
    -- The open jobs of those keys, by a snapshot taken after the locks, as an array:
    -- each waiting row ranked within its key and kept while its rank is within what
    -- the key's running jobs leave. Whatever the statistics say, the rows are then
    -- found again by primary key, never joined by a loop over a scan.
    SELECT (array_agg(ranked.id ORDER BY ranked.priority DESC, ranked.run_at))
            [1:least(v_limit, p_keyed)]
        INTO v_ids
    FROM (
        SELECT job.id, job.priority, job.run_at, job.concurrency_key, job.concurrency,
            row_number() OVER (PARTITION BY job.concurrency_key
                ORDER BY job.priority DESC, job.run_at, job.id) AS rank
        FROM jobs_job AS job
        WHERE job.state IN ('Enqueued', 'Scheduled') AND job.run_at <= p_now
            AND job.concurrency_key = ANY (v_keys)
            AND (p_mode = 0
                OR (p_mode = 1 AND job.queue = ANY (p_queues))
                OR (p_mode = 2 AND NOT (job.queue = ANY (p_queues))))
            AND (p_names IS NULL OR job.name = ANY (p_names))
    ) AS ranked
    WHERE ranked.rank <= ranked.concurrency
        AND ranked.rank <= ranked.concurrency - (SELECT count(*) FROM jobs_job AS running
            WHERE running.state = 'Processing'
                AND running.concurrency_key = ranked.concurrency_key);
    IF v_ids IS NULL THEN
        RETURN;
    END IF;
    -- `state || ''` keeps the partial indexes of runnable rows out of this plan (their
    -- predicate cannot be proven from it): by stale statistics they look empty, and a
    -- scan of one filtered by id reads every runnable row.
    RETURN QUERY
    SELECT job.id, job.priority, job.run_at FROM jobs_job AS job
    WHERE job.id = ANY (v_ids) AND (job.state || '') IN ('Enqueued', 'Scheduled')
    FOR UPDATE OF job SKIP LOCKED;
END
$$;
