-- What a succeeded job returned, as JSON (capped at 64 KiB); NULL for a job that returns
-- nothing, or has not succeeded.
ALTER TABLE jobs_job ADD COLUMN result text;
