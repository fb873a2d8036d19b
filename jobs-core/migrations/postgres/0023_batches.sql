-- Batches: jobs that end together into one fan-in job. `remaining` counts the members
-- not ended (not Succeeded, Failed or Deleted), `failed` those Failed; the trigger
-- below keeps both as members change state and, when `remaining` reaches 0, moves the
-- fan-in: `then_id` to Enqueued when none failed (and `on_failure_id` to Deleted),
-- else `on_failure_id` to Enqueued, `then_id` waiting until the failed members are
-- requeued and succeed (or deleted). Every path that changes a member's state (a
-- result, a delete, a requeue, maintenance, an older release) goes through it.
--
-- Exactly once: the counters are changed by an UPDATE of the batch row, which waits
-- for the row lock of a concurrent member's transaction and then re-reads the row
-- (read committed), so of two members ending at once on two servers, the second to
-- commit sees the first's count and only it sees 0; the release itself moves only an
-- `Awaiting` row.
CREATE TABLE IF NOT EXISTS jobs_batch (
    id            uuid PRIMARY KEY,
    label         text,
    created_at    timestamptz NOT NULL,
    total         bigint NOT NULL,
    remaining     bigint NOT NULL,
    failed        bigint NOT NULL DEFAULT 0,
    then_id       uuid,
    on_failure_id uuid
);

ALTER TABLE jobs_job ADD COLUMN IF NOT EXISTS batch_id uuid;
-- The index of the members of a batch is built CONCURRENTLY by migration 26.

CREATE OR REPLACE FUNCTION jobs_batch_member() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    batch jobs_batch%ROWTYPE;
    released bigint;
BEGIN
    UPDATE jobs_batch SET
        remaining = remaining
            + (NEW.state NOT IN ('Succeeded', 'Failed', 'Deleted'))::int
            - (OLD.state NOT IN ('Succeeded', 'Failed', 'Deleted'))::int,
        failed = failed + (NEW.state = 'Failed')::int - (OLD.state = 'Failed')::int
    WHERE id = NEW.batch_id
    RETURNING * INTO batch;
    IF NOT FOUND OR batch.remaining <> 0 THEN
        RETURN NULL;
    END IF;
    IF batch.failed = 0 THEN
        WITH moved AS (
            UPDATE jobs_job SET state = 'Enqueued', run_at = NEW.updated_at,
                updated_at = NEW.updated_at
            WHERE id = batch.then_id AND state = 'Awaiting'
            RETURNING id, attempt
        ), history AS (
            INSERT INTO jobs_event (job_id, at, state, attempt)
            SELECT id, NEW.updated_at, 'Enqueued', attempt FROM moved
        )
        SELECT count(*) INTO released FROM moved;
        WITH dropped AS (
            UPDATE jobs_job SET state = 'Deleted', updated_at = NEW.updated_at
            WHERE id = batch.on_failure_id AND state = 'Awaiting'
            RETURNING id, attempt
        )
        INSERT INTO jobs_event (job_id, at, state, attempt)
        SELECT id, NEW.updated_at, 'Deleted', attempt FROM dropped;
    ELSE
        WITH moved AS (
            UPDATE jobs_job SET state = 'Enqueued', run_at = NEW.updated_at,
                updated_at = NEW.updated_at
            WHERE id = batch.on_failure_id AND state = 'Awaiting'
            RETURNING id, attempt
        ), history AS (
            INSERT INTO jobs_event (job_id, at, state, attempt)
            SELECT id, NEW.updated_at, 'Enqueued', attempt FROM moved
        )
        SELECT count(*) INTO released FROM moved;
    END IF;
    IF released > 0 THEN
        PERFORM pg_notify(jobs_channel('jobs_enqueued'), '');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_job_batch_member AFTER UPDATE OF state ON jobs_job
    FOR EACH ROW
    WHEN (OLD.batch_id IS NOT NULL
        AND ((OLD.state IN ('Succeeded', 'Failed', 'Deleted'))
                IS DISTINCT FROM (NEW.state IN ('Succeeded', 'Failed', 'Deleted'))
            OR (OLD.state = 'Failed') IS DISTINCT FROM (NEW.state = 'Failed')))
    EXECUTE FUNCTION jobs_batch_member();
