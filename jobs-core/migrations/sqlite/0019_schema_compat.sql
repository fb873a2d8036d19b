-- What a build needs to work on this schema: each run of the migrations writes the
-- lowest schema version a build must know (`needs`), and the release and newest
-- version that wrote it. A build that finds versions it does not know checks `needs`
-- against the newest version it knows, and refuses to start only when it is below.
CREATE TABLE IF NOT EXISTS jobs_compat (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    needs INTEGER NOT NULL,
    version INTEGER NOT NULL,
    release TEXT NOT NULL
);
