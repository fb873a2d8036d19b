-- Who an agent tool call was for: the caller id, stored exactly as the application's
-- authentication gave it, on the jobs and recurring schedules tool calls create (and
-- on the runs of such a schedule). NULL on everything else. Tools list, count and
-- delete only the rows whose caller equals theirs.
ALTER TABLE jobs_job ADD COLUMN caller TEXT;
ALTER TABLE jobs_recurring ADD COLUMN caller TEXT;

-- Rows of earlier releases said who asked with two labels: `tool-call` and exactly one
-- `caller:<id>`. The id is the rest of that label, exact whatever it contains. Only jobs
-- that can still run are taken over; finished ones keep NULL (tools never show them).
UPDATE jobs_job SET caller = (
    SELECT substr(value, 8) FROM json_each(jobs_job.labels) WHERE substr(value, 1, 7) = 'caller:'
)
WHERE state IN ('Enqueued', 'Scheduled', 'Processing')
    AND EXISTS (SELECT 1 FROM json_each(jobs_job.labels) WHERE value = 'tool-call')
    AND (SELECT count(*) FROM json_each(jobs_job.labels) WHERE substr(value, 1, 7) = 'caller:') = 1;
UPDATE jobs_recurring SET caller = (
    SELECT substr(value, 8) FROM json_each(jobs_recurring.labels) WHERE substr(value, 1, 7) = 'caller:'
)
WHERE EXISTS (SELECT 1 FROM json_each(jobs_recurring.labels) WHERE value = 'tool-call')
    AND (SELECT count(*) FROM json_each(jobs_recurring.labels) WHERE substr(value, 1, 7) = 'caller:') = 1;

-- A caller's pending jobs (list, quota) and schedules (list in id order, quota).
CREATE INDEX jobs_job_caller ON jobs_job (caller, state, id) WHERE caller IS NOT NULL;
CREATE INDEX jobs_recurring_caller ON jobs_recurring (caller, id) WHERE caller IS NOT NULL;
