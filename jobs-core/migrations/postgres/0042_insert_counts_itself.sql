-- An insert of this build counts its jobs by state itself, in its own statement (a
-- `jobs_state_delta` row per state it inserted), instead of through the statement
-- trigger of migration 38, whose capture of the inserted rows and run cost about a
-- tenth of a single enqueue. Its rows name `created_state` (migration 41); an insert
-- that leaves it NULL (an older build's during a rolling deploy, a hand-written one)
-- is still counted, now by a row trigger that fires only for such rows, so this
-- build's inserts pay nothing for it and no insert is counted twice or missed. The
-- replacement happens in the migration's transaction: an insert waits for it.
CREATE OR REPLACE FUNCTION jobs_job_counted_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO jobs_state_delta (state, n) VALUES (NEW.state, 1);
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS jobs_job_counted_in ON jobs_job;
CREATE TRIGGER jobs_job_counted_in AFTER INSERT ON jobs_job
    FOR EACH ROW WHEN (NEW.created_state IS NULL)
    EXECUTE FUNCTION jobs_job_counted_row();
