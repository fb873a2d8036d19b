-- A queue's cluster-wide limit, enforced in the claim. The claims of a capped queue
-- take a transaction-scoped advisory lock on the queue's name, so they run one after
-- the other across every server; each then counts the queue's `Processing` jobs with a
-- snapshot taken after the lock (a volatile function's statements each take their own),
-- which sees the claims committed before it, and picks at most the rest. Claims of
-- other queues take no lock. The pick is `jobs_claim_pick`'s, sorting off and `ROWS 1`
-- for the same reasons (migration 0015).
CREATE INDEX IF NOT EXISTS jobs_job_processing_queue ON jobs_job (queue)
    WHERE state = 'Processing';

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
        AND job.queue = p_queue
        AND (p_names IS NULL OR job.name = ANY (p_names))
    ORDER BY job.priority DESC, job.run_at
    LIMIT least(p_limit, greatest(p_global - v_running, 0))
    FOR UPDATE OF job SKIP LOCKED;
END
$$;
