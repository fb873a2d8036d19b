-- The pick of some queues reads each through its own range of `jobs_job_queue_runnable`
-- (migration 32) and merges them in claim order: the given queues (mode 1), or every
-- queue that has runnable jobs but the given ones (mode 2), found by a loose scan of
-- that index that skips each queue's jobs with one lookup. It used to filter one walk
-- of `jobs_job_runnable` by queue, reading every job of the queues left out that came
-- first in claim order. Every queue (mode 0) is read as before. Each queue yields at
-- most `p_limit` rows, locked as they are read; those the merge leaves out are unlocked
-- at commit. Each queue's pick is ordered by the queue first, an order only the
-- queue's index gives without a sort, so with sorting off the planner cannot read the
-- queue through `jobs_job_runnable` instead, filtering the others out (as it did when
-- the statistics made that look as cheap). The queue is bounded by a range, not an
-- equality: with an equality the planner drops the queue from the order as constant.
-- The merge's sort of at most `p_limit` rows per queue is the one sort left; its
-- penalty's cost would start JIT compilation on every call (100 ms), hence `jit` off.
-- Same signatures, so servers of the release before call them unchanged.
CREATE OR REPLACE FUNCTION jobs_claim_pick(
    p_now timestamptz,
    p_limit bigint,
    p_mode integer,
    p_queues text[],
    p_names text[]
) RETURNS TABLE (id uuid, priority integer, run_at timestamptz)
LANGUAGE plpgsql
ROWS 1
SET enable_sort = off
SET jit = off
AS $$
DECLARE
    v_queues text[] := p_queues;
BEGIN
    IF p_mode = 0 THEN
        RETURN QUERY
        SELECT job.id, job.priority, job.run_at FROM jobs_job AS job
        WHERE job.state IN ('Enqueued', 'Scheduled') AND job.run_at <= p_now
            AND (p_names IS NULL OR job.name = ANY (p_names))
        ORDER BY job.priority DESC, job.run_at
        LIMIT p_limit
        FOR UPDATE OF job SKIP LOCKED;
        RETURN;
    END IF;
    IF p_mode = 2 THEN
        WITH RECURSIVE present (queue) AS (
            (SELECT job.queue FROM jobs_job AS job
             WHERE job.state IN ('Enqueued', 'Scheduled')
             ORDER BY job.queue LIMIT 1)
            UNION ALL
            SELECT (SELECT job.queue FROM jobs_job AS job
                    WHERE job.state IN ('Enqueued', 'Scheduled')
                        AND job.queue > present.queue
                    ORDER BY job.queue LIMIT 1)
            FROM present WHERE present.queue IS NOT NULL
        )
        SELECT coalesce(array_agg(present.queue), '{}') INTO v_queues FROM present
        WHERE present.queue IS NOT NULL AND NOT (present.queue = ANY (p_queues));
    END IF;
    RETURN QUERY
    SELECT picked.id, picked.priority, picked.run_at
    FROM unnest(v_queues) AS wanted (queue)
    CROSS JOIN LATERAL (
        SELECT job.id, job.priority, job.run_at FROM jobs_job AS job
        WHERE job.state IN ('Enqueued', 'Scheduled') AND job.queue >= wanted.queue
            AND job.queue <= wanted.queue
            AND job.run_at <= p_now
            AND (p_names IS NULL OR job.name = ANY (p_names))
        ORDER BY job.queue, job.priority DESC, job.run_at
        LIMIT p_limit
        FOR UPDATE OF job SKIP LOCKED
    ) AS picked
    ORDER BY picked.priority DESC, picked.run_at
    LIMIT p_limit;
END
$$;

-- A capped queue's pick (migration 17), read through the queue's own index the same way.
CREATE OR REPLACE FUNCTION jobs_claim_pick_capped(
    p_now timestamptz,
    p_limit bigint,
    p_queue text,
    p_global bigint,
    p_names text[]
) RETURNS TABLE (id uuid, priority integer, run_at timestamptz)
LANGUAGE plpgsql
ROWS 1
SET enable_sort = off
AS $$
DECLARE
    v_running bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('jobs_queue:' || p_queue, 0));
    SELECT count(*) INTO v_running FROM jobs_job AS job
    WHERE job.state = 'Processing' AND job.queue = p_queue;
    RETURN QUERY
    SELECT job.id, job.priority, job.run_at FROM jobs_job AS job
    WHERE job.state IN ('Enqueued', 'Scheduled') AND job.run_at <= p_now
        AND job.queue >= p_queue AND job.queue <= p_queue
        AND (p_names IS NULL OR job.name = ANY (p_names))
    ORDER BY job.queue, job.priority DESC, job.run_at
    LIMIT least(p_limit, greatest(p_global - v_running, 0))
    FOR UPDATE OF job SKIP LOCKED;
END
$$;
