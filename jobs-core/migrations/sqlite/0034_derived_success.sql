-- A success is said by the job row while the job stays succeeded: `succeeded_by` (the
-- server whose attempt succeeded) with the row's `state`, `attempt`, `started_at` and
-- `updated_at` (its end), so a result of this build that succeeds writes no history row.
-- That row and its entry in `jobs_event_job` were a third of what a claim and complete
-- of plain SQL costs on this table; a failure's row stays, as it holds the error.
-- Every way out of `Succeeded` (an operator's requeue, a delete, a batch's callback
-- made to wait again) fires the trigger below, which writes the success's row then,
-- before that way's own row, and clears `succeeded_by`: no history loses a success,
-- none shows it twice, and an older build's later success (which writes its own row)
-- is not read again from a stale column. A prune deletes the row and its history alike.
-- An older build's own history read and throughput chart (the stored rows only) miss
-- this build's successes until it is replaced, as with the creation (migration 32) and
-- the start (migration 33). Adding a column rewrites no row.
ALTER TABLE jobs_job ADD COLUMN succeeded_by TEXT;
CREATE TRIGGER jobs_job_success_kept AFTER UPDATE OF state ON jobs_job
    WHEN OLD.succeeded_by IS NOT NULL AND NEW.state <> 'Succeeded'
BEGIN
    INSERT INTO jobs_event (job_id, at, state, attempt, server, started_at)
    VALUES (OLD.id, OLD.updated_at, 'Succeeded', OLD.attempt, OLD.succeeded_by,
        OLD.started_at);
    UPDATE jobs_job SET succeeded_by = NULL WHERE id = OLD.id;
END;
