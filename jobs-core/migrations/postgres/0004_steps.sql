-- Continuations: a job awaiting its parent; `on_failure` ones run when it fails for good.
ALTER TABLE jobs_job ADD COLUMN parent_id uuid;
ALTER TABLE jobs_job ADD COLUMN on_failure boolean NOT NULL DEFAULT false;
ALTER TABLE jobs_job ADD COLUMN labels json NOT NULL DEFAULT '[]';
ALTER TABLE jobs_job ADD COLUMN progress_done bigint;
ALTER TABLE jobs_job ADD COLUMN progress_total bigint;
CREATE INDEX jobs_job_parent ON jobs_job (parent_id) WHERE parent_id IS NOT NULL;

-- Results of durable steps: a retry returns them instead of running the step again.
CREATE TABLE jobs_step (
    job_id uuid NOT NULL,
    name   text NOT NULL,
    value  json NOT NULL,
    at     timestamptz NOT NULL,
    PRIMARY KEY (job_id, name)
);

CREATE TABLE jobs_log (
    seq     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id  uuid NOT NULL,
    at      timestamptz NOT NULL,
    attempt integer NOT NULL,
    level   text NOT NULL,
    message text NOT NULL
);
CREATE INDEX jobs_log_job ON jobs_log (job_id, seq);
