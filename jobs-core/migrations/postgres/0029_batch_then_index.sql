-- A batch by its `then` job, for the prune that deletes the batch's row once its
-- members and fan-in jobs are gone; built CONCURRENTLY, as batches go on meanwhile.
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_batch_then ON jobs_batch (then_id)
    WHERE then_id IS NOT NULL;
