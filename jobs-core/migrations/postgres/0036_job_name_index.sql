-- The dashboard's page of one job name, newest first: without it a page walked the
-- primary key from the newest job down, past every newer job of other names. A job's
-- name never changes, so the index costs an insert and a delete, never a claim or a
-- result (and no HOT update is lost to it). Built CONCURRENTLY: claims go on meanwhile.
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_job_name ON jobs_job (name, id);
