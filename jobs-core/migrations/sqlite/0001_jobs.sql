-- Times are INTEGER microseconds since the Unix epoch: they compare and index as numbers.
CREATE TABLE jobs_job (
    id           TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    display_name TEXT NOT NULL,
    payload      TEXT NOT NULL,
    state        TEXT NOT NULL,
    queue        TEXT NOT NULL DEFAULT 'default',
    priority     INTEGER NOT NULL DEFAULT 0,
    run_at       INTEGER NOT NULL,
    attempt      INTEGER NOT NULL DEFAULT 0,
    max_retries  INTEGER,
    owner        TEXT,
    lease_until  INTEGER,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- What a claim scans: only runnable rows, in claim order.
CREATE INDEX jobs_job_runnable ON jobs_job (priority DESC, run_at)
    WHERE state IN ('Enqueued', 'Scheduled');
-- Listing by state, newest id first, and pruning by age.
CREATE INDEX jobs_job_state ON jobs_job (state, id);
CREATE INDEX jobs_job_state_updated ON jobs_job (state, updated_at);
-- Heartbeats extend leases by owner; rescue scans expired leases.
CREATE INDEX jobs_job_owner ON jobs_job (owner) WHERE state = 'Processing';
CREATE INDEX jobs_job_lease ON jobs_job (lease_until) WHERE state = 'Processing';

CREATE TABLE jobs_event (
    seq      INTEGER PRIMARY KEY,
    job_id   TEXT NOT NULL,
    at       INTEGER NOT NULL,
    state    TEXT NOT NULL,
    attempt  INTEGER NOT NULL,
    server   TEXT,
    message  TEXT,
    sources  TEXT
);
CREATE INDEX jobs_event_job ON jobs_event (job_id, seq);

CREATE TABLE jobs_server (
    id           TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    workers      INTEGER NOT NULL,
    running      INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
