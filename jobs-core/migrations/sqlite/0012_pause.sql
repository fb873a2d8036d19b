-- Queues and job names paused cluster-wide: no server starts a job of one until it is
-- resumed. `kind` is 'queue' or 'job'; who paused it and when, for the dashboard.
CREATE TABLE jobs_pause (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    paused_by TEXT NOT NULL,
    paused_at INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
);
