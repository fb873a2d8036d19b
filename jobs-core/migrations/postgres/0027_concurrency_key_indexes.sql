-- The indexes of partitioned limits (migration 24), built CONCURRENTLY outside the
-- migration's transaction (the job table may be big, and claims go on meanwhile): the
-- count of a key's `Processing` rows, and the waiting keyed rows by key in claim order.
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_job_processing_key ON jobs_job (concurrency_key)
    WHERE state = 'Processing' AND concurrency_key IS NOT NULL;

CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_job_keyed
    ON jobs_job (concurrency_key, priority DESC, run_at, id)
    WHERE state IN ('Enqueued', 'Scheduled') AND concurrency_key IS NOT NULL;
