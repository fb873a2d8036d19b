-- Autovacuum for the tables every job churns through. A job row is written at least
-- three times (enqueue, claim, result) and deleted by the prune, so a busy table holds
-- two or three dead row versions per job until a vacuum frees their space for new rows.
-- At the server's defaults a vacuum starts only once a fifth of a table is dead and then
-- runs at the cost limit of any table: on a table taking thousands of jobs a second it
-- started late and had not finished a pass by the time it was needed again, so the
-- table grew with every job although the prune kept its live rows bounded.
--
-- Here each of these tables is vacuumed once a hundredth of it is dead (and analyzed
-- once a fiftieth changed, so the planner sees a backlog soon), at ten times the default
-- cost limit. Setting a table's options takes a lock that only vacuums and index
-- builds wait on, never the jobs' reads and writes. An option a table already has is
-- left as it is: an operator's own choice stands, and so does a run of this script
-- after one.
DO $$
DECLARE
    settings CONSTANT text[][] := ARRAY[
        ['jobs_job', 'autovacuum_vacuum_scale_factor', '0.01'],
        ['jobs_job', 'autovacuum_vacuum_insert_scale_factor', '0.02'],
        ['jobs_job', 'autovacuum_analyze_scale_factor', '0.02'],
        ['jobs_job', 'autovacuum_vacuum_cost_limit', '2000'],
        ['jobs_event', 'autovacuum_vacuum_scale_factor', '0.01'],
        ['jobs_event', 'autovacuum_vacuum_insert_scale_factor', '0.02'],
        ['jobs_event', 'autovacuum_vacuum_cost_limit', '2000'],
        ['jobs_job_label', 'autovacuum_vacuum_scale_factor', '0.01'],
        ['jobs_job_label', 'autovacuum_vacuum_cost_limit', '2000'],
        ['jobs_state_delta', 'autovacuum_vacuum_scale_factor', '0'],
        ['jobs_state_delta', 'autovacuum_vacuum_threshold', '1000'],
        ['jobs_state_delta', 'autovacuum_vacuum_insert_scale_factor', '0'],
        ['jobs_state_delta', 'autovacuum_vacuum_insert_threshold', '1000']
    ];
    i int;
BEGIN
    FOR i IN 1 .. array_length(settings, 1) LOOP
        IF NOT EXISTS (
            SELECT 1 FROM pg_class c
            CROSS JOIN LATERAL unnest(coalesce(c.reloptions, '{}')) AS o(option)
            WHERE c.oid = to_regclass(settings[i][1])
              AND split_part(o.option, '=', 1) = settings[i][2]
        ) THEN
            EXECUTE format('ALTER TABLE %I SET (%s = %s)',
                settings[i][1], settings[i][2], settings[i][3]);
        END IF;
    END LOOP;
END;
$$;
