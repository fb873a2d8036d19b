-- The history rows of a job's creation and of each claim say nothing the job row does not
-- say already. Written by triggers, they cost no statement of their own: an enqueue and a
-- claim are one statement each, which SQLite runs atomically without an explicit
-- transaction.
CREATE TRIGGER jobs_job_created AFTER INSERT ON jobs_job
BEGIN
    INSERT INTO jobs_event (job_id, at, state, attempt)
    VALUES (NEW.id, NEW.created_at, NEW.state, NEW.attempt);
END;

CREATE TRIGGER jobs_job_claimed AFTER UPDATE OF state ON jobs_job
    WHEN NEW.state = 'Processing' AND OLD.state <> 'Processing'
BEGIN
    INSERT INTO jobs_event (job_id, at, state, attempt, server)
    VALUES (NEW.id, NEW.updated_at, 'Processing', NEW.attempt, NEW.owner);
END;
