-- Rates per concurrency key: a keyed job may carry how many jobs of its key may start
-- in any window (`#[job(concurrency_key = "…", rate = "10/1m")]`): the count, and the
-- window the claim counts starts over, in milliseconds (the rate's period plus the
-- start slack). Starts are recorded in `jobs_rate_start` (migration 28) under the
-- scope `key:<concurrency_key>`, one row per key per claim, by the claim statement.
ALTER TABLE jobs_job ADD COLUMN IF NOT EXISTS rate_count integer;
ALTER TABLE jobs_job ADD COLUMN IF NOT EXISTS rate_window_ms bigint;

-- The pick of a server that runs keyed jobs, with rates: `jobs_claim_pick_keyed` of
-- migration 24 and one more argument, `p_offset`, what the claimer's clock adds to the
-- database's in microseconds (the rate windows are on the database's clock plus it,
-- as leases and queue rates are). The version of migration 24 stays for the builds
-- before this one, which read no rate. Of each key it takes at most the least of
--   * its concurrency less its `Processing` jobs (a job with a rate and no
--     concurrency: any number; with neither, none, as before), and
--   * its rate's count less the key's starts within the rate's window,
-- both counted after the key's advisory lock, in statements whose snapshots follow it:
-- the claim statement records the starts it took before it commits (and so before the
-- lock is released), so the next claim of the key counts them. The key's starts that
-- left the window are deleted here, under the same lock.
CREATE OR REPLACE FUNCTION jobs_claim_pick_keyed(
    p_now timestamptz,
    p_limit bigint,
    p_keyed bigint,
    p_mode integer,
    p_queues text[],
    p_names text[],
    p_global bigint,
    p_offset bigint
) RETURNS TABLE (id uuid, priority integer, run_at timestamptz)
LANGUAGE plpgsql
ROWS 1
SET enable_sort = off
AS $$
DECLARE
    v_limit bigint := p_limit;
    v_running bigint;
    v_keys text[];
    v_windows bigint[];
    v_at timestamptz;
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
    -- The keys with due jobs that look like they have room, read before their locks:
    -- only which keys to lock; the counts after the locks decide. A rated key looks
    -- full while its most generous rate's count of starts lies within its shortest
    -- window.
    v_at := clock_timestamp() + p_offset * interval '1 microsecond';
    SELECT array_agg(waiting.concurrency_key
                ORDER BY hashtextextended('jobs_concurrency:' || waiting.concurrency_key, 0)),
            array_agg(waiting.rate_window_ms
                ORDER BY hashtextextended('jobs_concurrency:' || waiting.concurrency_key, 0))
        INTO v_keys, v_windows
    FROM (
        SELECT job.concurrency_key,
            max(coalesce(job.concurrency,
                CASE WHEN job.rate_count IS NOT NULL THEN 2147483647 END)) AS concurrency,
            bool_and(job.rate_count IS NOT NULL) AS rated,
            max(job.rate_count) AS rate_count,
            max(job.rate_window_ms) AS rate_window_ms,
            min(job.rate_window_ms) AS shortest_window_ms
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
            AND running.concurrency_key = waiting.concurrency_key)
        AND (NOT waiting.rated OR waiting.rate_count > (
            SELECT coalesce(sum(start.starts), 0) FROM jobs_rate_start AS start
            WHERE start.scope = 'key:' || waiting.concurrency_key
                AND start.started_at
                    > v_at - waiting.shortest_window_ms * interval '1 millisecond'));
    IF v_keys IS NULL THEN
        RETURN;
    END IF;
    FOREACH v_key IN ARRAY v_keys LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended('jobs_concurrency:' || v_key, 0));
    END LOOP;
    -- The rated keys' starts that left the window (of the longest window among the
    -- key's due jobs), under the keys' locks.
    v_at := clock_timestamp() + p_offset * interval '1 microsecond';
    DELETE FROM jobs_rate_start AS start
    USING unnest(v_keys, v_windows) AS rated (concurrency_key, window_ms)
    WHERE rated.window_ms IS NOT NULL
        AND start.scope = 'key:' || rated.concurrency_key
        AND start.started_at <= v_at - rated.window_ms * interval '1 millisecond';
    -- The open jobs of those keys, by a snapshot taken after the locks, as an array:
    -- each waiting row ranked within its key and kept while its rank is within what
    -- the key's running jobs leave and what its rate's window leaves (each row under
    -- its own concurrency and rate). Whatever the statistics say, the rows are then
    -- found again by primary key, never joined by a loop over a scan.
    SELECT (array_agg(ranked.id ORDER BY ranked.priority DESC, ranked.run_at))
            [1:least(v_limit, p_keyed)]
        INTO v_ids
    FROM (
        SELECT job.id, job.priority, job.run_at, job.concurrency_key,
            coalesce(job.concurrency,
                CASE WHEN job.rate_count IS NOT NULL THEN 2147483647 END) AS concurrency,
            job.rate_count, job.rate_window_ms,
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
                AND running.concurrency_key = ranked.concurrency_key)
        AND (ranked.rate_count IS NULL OR (ranked.rank <= ranked.rate_count
            AND ranked.rank <= ranked.rate_count - (
                SELECT coalesce(sum(start.starts), 0) FROM jobs_rate_start AS start
                WHERE start.scope = 'key:' || ranked.concurrency_key
                    AND start.started_at
                        > v_at - ranked.rate_window_ms * interval '1 millisecond')));
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
