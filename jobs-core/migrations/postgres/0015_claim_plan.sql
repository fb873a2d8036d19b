-- The claim's pick, planned so that it reads only the rows it takes whatever the
-- statistics say. Inline, the planner chose by the statistics of the moment: when a
-- backlog arrived on a big table after the last ANALYZE, they said "no runnable rows",
-- and it walked `jobs_job_due` over every runnable row and sorted them all (tens of ms
-- per claim, spilling to disk) instead of reading the first rows of
-- `jobs_job_runnable` in order. With sorting disabled for this one query the ordered
-- index is the only plan left that avoids a sort; PL/pgSQL keeps the plan per session.
-- `ROWS 1`: the claim joins the picked rows back to `jobs_job` by key; with a set-
-- returning function's default estimate of 1,000 rows the planner hashed the whole
-- table for that join on every claim (a sequential scan per claim, 8 times slower
-- drains); a small estimate keeps the lookups by primary key.
-- `p_mode`: 0 every queue, 1 only `p_queues`, 2 all but `p_queues`; `p_names` NULL
-- for every job name.
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
AS $$
BEGIN
    RETURN QUERY
    SELECT job.id, job.priority, job.run_at FROM jobs_job AS job
    WHERE job.state IN ('Enqueued', 'Scheduled') AND job.run_at <= p_now
        AND (p_mode = 0
            OR (p_mode = 1 AND job.queue = ANY (p_queues))
            OR (p_mode = 2 AND NOT (job.queue = ANY (p_queues))))
        AND (p_names IS NULL OR job.name = ANY (p_names))
    ORDER BY job.priority DESC, job.run_at
    LIMIT p_limit
    FOR UPDATE OF job SKIP LOCKED;
END
$$;
