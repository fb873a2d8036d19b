-- Continuations: a job awaiting its parent; `on_failure` ones run when it fails for good.
ALTER TABLE jobs_job ADD COLUMN parent_id TEXT;
ALTER TABLE jobs_job ADD COLUMN on_failure INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs_job ADD COLUMN labels TEXT NOT NULL DEFAULT '[]';
ALTER TABLE jobs_job ADD COLUMN progress_done INTEGER;
ALTER TABLE jobs_job ADD COLUMN progress_total INTEGER;
CREATE INDEX jobs_job_parent ON jobs_job (parent_id) WHERE parent_id IS NOT NULL;

-- Results of durable steps: a retry returns them instead of running the step again.
CREATE TABLE jobs_step (
    job_id TEXT NOT NULL,
    name   TEXT NOT NULL,
    value  TEXT NOT NULL,
    at     INTEGER NOT NULL,
    PRIMARY KEY (job_id, name)
);

CREATE TABLE jobs_log (
    seq     INTEGER PRIMARY KEY,
    job_id  TEXT NOT NULL,
    at      INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    level   TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX jobs_log_job ON jobs_log (job_id, seq);
