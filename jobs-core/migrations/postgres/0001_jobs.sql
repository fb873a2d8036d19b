-- Ids are uuid, times timestamptz (microseconds, like the SQLite schema). Payloads and
-- error sources are `json`, not `jsonb`: `json` keeps serde's text as written and
-- accepts the escape `\u0000`, which `jsonb` rejects.
CREATE TABLE jobs_job (
    id           uuid PRIMARY KEY,
    name         text NOT NULL,
    display_name text NOT NULL,
    payload      json NOT NULL,
    state        text NOT NULL CHECK (state IN ('Scheduled', 'Enqueued', 'Processing',
                     'Succeeded', 'Failed', 'Deleted', 'Awaiting')),
    queue        text NOT NULL DEFAULT 'default',
    priority     integer NOT NULL DEFAULT 0,
    run_at       timestamptz NOT NULL,
    attempt      integer NOT NULL DEFAULT 0,
    max_retries  bigint,
    owner        text,
    lease_until  timestamptz,
    last_error   text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

-- What a claim scans: only runnable rows, in claim order.
CREATE INDEX jobs_job_runnable ON jobs_job (priority DESC, run_at)
    WHERE state IN ('Enqueued', 'Scheduled');
-- The earliest runnable job, read by every idle server to time its sleep.
CREATE INDEX jobs_job_due ON jobs_job (run_at)
    WHERE state IN ('Enqueued', 'Scheduled');
-- Listing by state, newest id first, and pruning by age.
CREATE INDEX jobs_job_state ON jobs_job (state, id);
CREATE INDEX jobs_job_state_updated ON jobs_job (state, updated_at);
-- Heartbeats extend leases by owner; rescue scans expired leases.
CREATE INDEX jobs_job_owner ON jobs_job (owner) WHERE state = 'Processing';
CREATE INDEX jobs_job_lease ON jobs_job (lease_until) WHERE state = 'Processing';

CREATE TABLE jobs_event (
    seq      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id   uuid NOT NULL,
    at       timestamptz NOT NULL,
    state    text NOT NULL,
    attempt  integer NOT NULL,
    server   text,
    message  text,
    sources  json
);
CREATE INDEX jobs_event_job ON jobs_event (job_id, seq);

CREATE TABLE jobs_server (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    host         text NOT NULL,
    pid          bigint NOT NULL,
    workers      integer NOT NULL,
    running      integer NOT NULL,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL
);
