ALTER TABLE jobs_job ADD COLUMN recurring_id text;
-- "Is a run of this recurring job still active?" before each new run.
CREATE INDEX jobs_job_recurring ON jobs_job (recurring_id, state) WHERE recurring_id IS NOT NULL;

CREATE TABLE jobs_recurring (
    id              text PRIMARY KEY,
    schedule        text NOT NULL,
    zone            text NOT NULL,
    job_name        text NOT NULL,
    display_name    text NOT NULL,
    payload         json NOT NULL,
    max_retries     bigint,
    missed          text NOT NULL,
    allow_overlap   boolean NOT NULL,
    enabled         boolean NOT NULL DEFAULT true,
    disabled_reason text,
    source          text NOT NULL,
    next_run_at     timestamptz NOT NULL,
    last_run_at     timestamptz,
    last_job_id     uuid,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX jobs_recurring_due ON jobs_recurring (next_run_at) WHERE enabled;
