-- A result batch is fenced on (id, owner). With only `owner` in the index the planner
-- could scan every row the server has finished since the last vacuum for each result,
-- which made long drains quadratic; (owner, id) finds each row directly.
DROP INDEX jobs_job_owner;
CREATE INDEX jobs_job_owner ON jobs_job (owner, id) WHERE state = 'Processing';
