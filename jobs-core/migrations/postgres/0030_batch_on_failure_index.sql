-- A batch by its `on_failure` job, for the same prune as 0029.
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_batch_on_failure ON jobs_batch (on_failure_id)
    WHERE on_failure_id IS NOT NULL;
