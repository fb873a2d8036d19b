-- Batches: jobs that end together into one fan-in job. `remaining` counts the members
-- not ended (not Succeeded, Failed or Deleted), `failed` those Failed; the trigger
-- below keeps both as members change state and, when `remaining` reaches 0, moves the
-- fan-in: `then_id` to Enqueued when none failed (and `on_failure_id` to Deleted),
-- else `on_failure_id` to Enqueued, `then_id` waiting until the failed members are
-- requeued and succeed (or deleted). Every path that changes a member's state (a
-- result, a delete, a requeue, maintenance) goes through it, in its own statement.
CREATE TABLE IF NOT EXISTS jobs_batch (
    id TEXT PRIMARY KEY NOT NULL,
    label TEXT,
    created_at INTEGER NOT NULL,
    total INTEGER NOT NULL,
    remaining INTEGER NOT NULL,
    failed INTEGER NOT NULL DEFAULT 0,
    then_id TEXT,
    on_failure_id TEXT
) WITHOUT ROWID;

ALTER TABLE jobs_job ADD COLUMN batch_id TEXT;
CREATE INDEX IF NOT EXISTS jobs_job_batch ON jobs_job (batch_id, id) WHERE batch_id IS NOT NULL;

CREATE TRIGGER jobs_job_batch_member AFTER UPDATE OF state ON jobs_job
    WHEN OLD.batch_id IS NOT NULL
        AND ((OLD.state IN ('Succeeded', 'Failed', 'Deleted'))
                <> (NEW.state IN ('Succeeded', 'Failed', 'Deleted'))
            OR (OLD.state = 'Failed') <> (NEW.state = 'Failed'))
BEGIN
    UPDATE jobs_batch SET
        remaining = remaining + (NEW.state NOT IN ('Succeeded', 'Failed', 'Deleted'))
            - (OLD.state NOT IN ('Succeeded', 'Failed', 'Deleted')),
        failed = failed + (NEW.state = 'Failed') - (OLD.state = 'Failed')
    WHERE id = OLD.batch_id;
    -- Every member ended, none failed: the fan-in runs.
    INSERT INTO jobs_event (job_id, at, state, attempt)
    SELECT job.id, NEW.updated_at, 'Enqueued', job.attempt
    FROM jobs_batch AS batch JOIN jobs_job AS job ON job.id = batch.then_id
    WHERE batch.id = OLD.batch_id AND batch.remaining = 0 AND batch.failed = 0
        AND job.state = 'Awaiting';
    UPDATE jobs_job SET state = 'Enqueued', run_at = NEW.updated_at, updated_at = NEW.updated_at
    WHERE state = 'Awaiting' AND id = (SELECT then_id FROM jobs_batch
        WHERE id = OLD.batch_id AND remaining = 0 AND failed = 0);
    INSERT INTO jobs_event (job_id, at, state, attempt)
    SELECT job.id, NEW.updated_at, 'Deleted', job.attempt
    FROM jobs_batch AS batch JOIN jobs_job AS job ON job.id = batch.on_failure_id
    WHERE batch.id = OLD.batch_id AND batch.remaining = 0 AND batch.failed = 0
        AND job.state = 'Awaiting';
    UPDATE jobs_job SET state = 'Deleted', updated_at = NEW.updated_at
    WHERE state = 'Awaiting' AND id = (SELECT on_failure_id FROM jobs_batch
        WHERE id = OLD.batch_id AND remaining = 0 AND failed = 0);
    -- Every member ended, some failed: the on-failure job runs.
    INSERT INTO jobs_event (job_id, at, state, attempt)
    SELECT job.id, NEW.updated_at, 'Enqueued', job.attempt
    FROM jobs_batch AS batch JOIN jobs_job AS job ON job.id = batch.on_failure_id
    WHERE batch.id = OLD.batch_id AND batch.remaining = 0 AND batch.failed > 0
        AND job.state = 'Awaiting';
    UPDATE jobs_job SET state = 'Enqueued', run_at = NEW.updated_at, updated_at = NEW.updated_at
    WHERE state = 'Awaiting' AND id = (SELECT on_failure_id FROM jobs_batch
        WHERE id = OLD.batch_id AND remaining = 0 AND failed > 0);
END;
