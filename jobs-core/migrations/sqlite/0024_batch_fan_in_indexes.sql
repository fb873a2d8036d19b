-- A batch by its fan-in jobs: when the prune deletes a fan-in job, it finds the batch
-- whose row may go with it.
CREATE INDEX IF NOT EXISTS jobs_batch_then ON jobs_batch (then_id) WHERE then_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_batch_on_failure ON jobs_batch (on_failure_id)
    WHERE on_failure_id IS NOT NULL;
