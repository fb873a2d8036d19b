-- The dashboard's count of jobs by state, kept by the database instead of counted from
-- the whole job table on every read. A row trigger on one counter row per state would
-- make every claim and result of every server wait on the same few rows; instead each
-- statement that changes jobs_job appends its net change per state to
-- `jobs_state_delta` (an append-only table without indexes, so writers never wait on
-- each other there), and server maintenance folds those rows into `jobs_state_count`.
-- A read sums both tables in one snapshot. The triggers live in the database, so they
-- count the writes of every build, older ones included. The jobs stored before this
-- script are counted by 0039, outside this transaction.
CREATE TABLE IF NOT EXISTS jobs_state_count (
    state text PRIMARY KEY,
    n     bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS jobs_state_delta (
    state text NOT NULL,
    n     bigint NOT NULL
);

-- One function for the three triggers: an insert adds its new rows, a delete removes
-- its old rows, an update adds the new and removes the old, so an update that changes
-- no state (a lease renewal, progress, a log) nets to zero and writes nothing.
CREATE OR REPLACE FUNCTION jobs_job_state_delta() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO jobs_state_delta (state, n)
            SELECT state, count(*) FROM jobs_job_added GROUP BY state;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO jobs_state_delta (state, n)
            SELECT state, -count(*) FROM jobs_job_removed GROUP BY state;
    ELSE
        INSERT INTO jobs_state_delta (state, n)
            SELECT state, sum(n) FROM (
                SELECT state, 1 AS n FROM jobs_job_added
                UNION ALL
                SELECT state, -1 FROM jobs_job_removed
            ) AS moved
            GROUP BY state HAVING sum(n) <> 0;
    END IF;
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS jobs_job_counted_in ON jobs_job;
CREATE TRIGGER jobs_job_counted_in AFTER INSERT ON jobs_job
    REFERENCING NEW TABLE AS jobs_job_added
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_job_state_delta();
DROP TRIGGER IF EXISTS jobs_job_counted_moved ON jobs_job;
CREATE TRIGGER jobs_job_counted_moved AFTER UPDATE ON jobs_job
    REFERENCING OLD TABLE AS jobs_job_removed NEW TABLE AS jobs_job_added
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_job_state_delta();
DROP TRIGGER IF EXISTS jobs_job_counted_out ON jobs_job;
CREATE TRIGGER jobs_job_counted_out AFTER DELETE ON jobs_job
    REFERENCING OLD TABLE AS jobs_job_removed
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_job_state_delta();
