-- Queues and job names paused cluster-wide: no server starts a job of one until it is
-- resumed. `kind` is 'queue' or 'job'; who paused it and when, for the dashboard.
CREATE TABLE IF NOT EXISTS jobs_pause (
    kind text NOT NULL,
    name text NOT NULL,
    paused_by text NOT NULL,
    paused_at timestamptz NOT NULL,
    PRIMARY KEY (kind, name)
);
