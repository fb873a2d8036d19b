ALTER TABLE jobs_job ADD COLUMN recurring_id TEXT;
-- "Is a run of this recurring job still active?" before each new run.
CREATE INDEX jobs_job_recurring ON jobs_job (recurring_id, state) WHERE recurring_id IS NOT NULL;

CREATE TABLE jobs_recurring (
    id              TEXT PRIMARY KEY NOT NULL,
    schedule        TEXT NOT NULL,
    zone            TEXT NOT NULL,
    job_name        TEXT NOT NULL,
    display_name    TEXT NOT NULL,
    payload         TEXT NOT NULL,
    max_retries     INTEGER,
    missed          TEXT NOT NULL,
    allow_overlap   INTEGER NOT NULL,
    enabled         INTEGER NOT NULL DEFAULT 1,
    disabled_reason TEXT,
    source          TEXT NOT NULL,
    next_run_at     INTEGER NOT NULL,
    last_run_at     INTEGER,
    last_job_id     TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX jobs_recurring_due ON jobs_recurring (next_run_at) WHERE enabled = 1;
