-- Partitioned limits: a job may carry a concurrency key (rendered from its arguments by
-- `#[job(concurrency_key = "…")]`) and how many jobs of that key may be `Processing`
-- at once. The claim counts the key's `Processing` rows (the first index) and ranks
-- the waiting rows of each key in claim order (the second, keyed rows only, so claims
-- of servers without keyed jobs read neither).
ALTER TABLE jobs_job ADD COLUMN concurrency_key TEXT;
ALTER TABLE jobs_job ADD COLUMN concurrency INTEGER;

CREATE INDEX IF NOT EXISTS jobs_job_processing_key ON jobs_job (concurrency_key)
    WHERE state = 'Processing' AND concurrency_key IS NOT NULL;

CREATE INDEX IF NOT EXISTS jobs_job_keyed ON jobs_job (concurrency_key, priority DESC, run_at, id)
    WHERE state IN ('Enqueued', 'Scheduled') AND concurrency_key IS NOT NULL;
