-- The members of a batch, for its page and its results, built CONCURRENTLY outside the
-- migration's transaction (the job table may be big, and claims go on meanwhile).
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_job_batch ON jobs_job (batch_id, id)
    WHERE batch_id IS NOT NULL;
