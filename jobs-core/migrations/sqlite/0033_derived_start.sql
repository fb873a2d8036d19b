-- An attempt's start is said by the job row while it runs (`started_at`, and
-- `started_token`, the claim it belongs to) and, once it ends with a result, by the row
-- of that result (`jobs_event.started_at`): a claim writes no history row. That row and
-- its entry in `jobs_event_job` were two of the pages each claimed job cost.
-- A claim that leaves `started_token` behind its token (an older build's during a
-- rolling deploy) still gets its row from the trigger, as before. A result of this
-- build (a rescue's included) that counts the attempt clears `started_token` and writes
-- the start in its own row. Every other way out of `Processing` (a release, a delete, a
-- requeue, an uncharged result, an older build's result) leaves `started_token` as it
-- is, and the second trigger writes the start's row then, before that way's own row:
-- no history loses a start and none shows it twice.
-- Adding columns rewrites no row.
ALTER TABLE jobs_job ADD COLUMN started_at INTEGER;
ALTER TABLE jobs_job ADD COLUMN started_token INTEGER;
ALTER TABLE jobs_event ADD COLUMN started_at INTEGER;
DROP TRIGGER IF EXISTS jobs_job_claimed;
CREATE TRIGGER jobs_job_claimed AFTER UPDATE OF state ON jobs_job
    WHEN NEW.state = 'Processing' AND OLD.state <> 'Processing'
        AND NEW.started_token IS NOT NEW.token
BEGIN
    INSERT INTO jobs_event (job_id, at, state, attempt, server)
    VALUES (NEW.id, NEW.updated_at, 'Processing', NEW.attempt, NEW.owner);
END;
CREATE TRIGGER jobs_job_start_kept AFTER UPDATE OF state ON jobs_job
    WHEN OLD.state = 'Processing' AND NEW.state <> 'Processing'
        AND OLD.started_token = OLD.token AND NEW.started_token IS NOT NULL
BEGIN
    INSERT INTO jobs_event (job_id, at, state, attempt, server)
    VALUES (OLD.id, OLD.started_at, 'Processing', OLD.attempt, OLD.owner);
END;
