-- The old jobs of a state oldest first, ties by id, for the prune: the index serves both
-- its filter and its order, so a batch reads the rows it deletes whatever the statistics
-- say (on `(state, updated_at)` alone, a plan for the few rows stale statistics promised
-- read every prunable row to sort them by id). It replaces that index, which it covers.
-- Built, and the old one dropped, CONCURRENTLY: jobs go on meanwhile.
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_job_state_updated_id
    ON jobs_job (state, updated_at, id);
DROP INDEX CONCURRENTLY IF EXISTS jobs_job_state_updated;
