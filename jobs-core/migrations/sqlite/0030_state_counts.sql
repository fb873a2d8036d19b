-- The dashboard's count of jobs by state, kept by triggers instead of counted from the
-- whole job table on every read. SQLite has one writer at a time, so one counter row
-- per state costs no waiting; the triggers fire only when a row comes, goes or changes
-- state (not on a lease renewal or progress), and live in the database, so they count
-- the writes of every build, older ones included. The jobs already stored are counted
-- here, in the migration's transaction, which holds the write lock.
CREATE TABLE IF NOT EXISTS jobs_state_count (
    state TEXT PRIMARY KEY NOT NULL,
    n     INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO jobs_state_count (state, n)
    SELECT state, count(*) FROM jobs_job WHERE true GROUP BY state
    ON CONFLICT (state) DO UPDATE SET n = excluded.n;

CREATE TRIGGER IF NOT EXISTS jobs_job_counted_in AFTER INSERT ON jobs_job
BEGIN
    INSERT INTO jobs_state_count (state, n) VALUES (NEW.state, 1)
        ON CONFLICT (state) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER IF NOT EXISTS jobs_job_counted_moved AFTER UPDATE OF state ON jobs_job
    WHEN NEW.state <> OLD.state
BEGIN
    UPDATE jobs_state_count SET n = n - 1 WHERE state = OLD.state;
    INSERT INTO jobs_state_count (state, n) VALUES (NEW.state, 1)
        ON CONFLICT (state) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER IF NOT EXISTS jobs_job_counted_out AFTER DELETE ON jobs_job
BEGIN
    UPDATE jobs_state_count SET n = n - 1 WHERE state = OLD.state;
END;
