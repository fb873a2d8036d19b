-- The jobs stored before 0038, counted in one statement outside a transaction, so the
-- job table's writers are not held while it reads. Every write committed since 0038
-- is in the counters already (its triggers waited for the writers of the time), so the
-- jobs this snapshot sees that the counters do not are exactly the ones stored before:
-- their count goes in as one more delta. Run again, it finds nothing missing.
INSERT INTO jobs_state_delta (state, n)
    SELECT state, sum(n) FROM (
        SELECT state, count(*) AS n FROM jobs_job GROUP BY state
        UNION ALL
        SELECT state, -n FROM jobs_state_count
        UNION ALL
        SELECT state, -n FROM jobs_state_delta
    ) AS missing
    GROUP BY state HAVING sum(n) <> 0
