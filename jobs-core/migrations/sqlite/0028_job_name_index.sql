-- The dashboard's page of one job name, newest first: without it a page walked the
-- primary key from the newest job down, past every newer job of other names (100,000
-- of them took 510 ms on a table of 10,000,000). A job's name never changes, so the
-- index costs an insert and a delete, never a claim or a result.
CREATE INDEX IF NOT EXISTS jobs_job_name ON jobs_job (name, id);
