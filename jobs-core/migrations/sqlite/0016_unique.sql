-- Unique jobs: which job holds each unique key (a UUIDv5 of the job's name and its
-- arguments or rendered key), until when. An enqueue looks its key up and takes it in
-- the write transaction that stores the job; maintenance deletes the keys that expired.
CREATE TABLE IF NOT EXISTS jobs_unique (
    key TEXT PRIMARY KEY NOT NULL,
    job_id TEXT NOT NULL,
    until INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS jobs_unique_until ON jobs_unique (until);
