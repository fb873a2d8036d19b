-- Unique jobs: which job holds each unique key (a UUIDv5 of the job's name and its
-- arguments or rendered key), until when. An enqueue takes an advisory lock on the key,
-- then looks it up and takes it in the transaction that stores the job; maintenance
-- deletes the keys that expired.
CREATE TABLE IF NOT EXISTS jobs_unique (
    key uuid PRIMARY KEY,
    job_id uuid NOT NULL,
    until timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_unique_until ON jobs_unique (until);
