-- A job's creation is said by its row: `created_at`, and now `created_state`, the state
-- it was stored in. An insert that names `created_state` (this build's enqueues) gets no
-- history row of its creation; reading the history derives one from the row. That row
-- and its entry in `jobs_event_job` were two of the nine pages one enqueue wrote.
-- An insert that leaves it NULL (an older build's during a rolling deploy, and every job
-- stored before) still gets the row from the trigger, so no history loses its start and
-- none shows it twice. Adding a column rewrites no row.
ALTER TABLE jobs_job ADD COLUMN created_state TEXT;
DROP TRIGGER IF EXISTS jobs_job_created;
CREATE TRIGGER jobs_job_created AFTER INSERT ON jobs_job
    WHEN NEW.created_state IS NULL
BEGIN
    INSERT INTO jobs_event (job_id, at, state, attempt)
    VALUES (NEW.id, NEW.created_at, NEW.state, NEW.attempt);
END;
