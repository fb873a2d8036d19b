-- The old jobs of a state oldest first, ties by id, for the prune: the index serves both
-- its filter and its order, so a batch reads the rows it takes and sorts none. It
-- replaces `(state, updated_at)`, which it covers.
CREATE INDEX IF NOT EXISTS jobs_job_state_updated_id ON jobs_job (state, updated_at, id);
DROP INDEX IF EXISTS jobs_job_state_updated;
