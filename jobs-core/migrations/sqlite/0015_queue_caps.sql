-- A queue's cluster-wide limit is enforced in the claim, which counts the queue's
-- `Processing` jobs: this index keeps that count to those rows.
CREATE INDEX IF NOT EXISTS jobs_job_processing_queue ON jobs_job (queue)
    WHERE state = 'Processing';
