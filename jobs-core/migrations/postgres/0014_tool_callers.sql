-- Who an agent tool call was for: the caller id, stored exactly as the application's
-- authentication gave it, on the jobs and recurring schedules tool calls create (and
-- on the runs of such a schedule). NULL on everything else. Tools list, count and
-- delete only the rows whose caller equals theirs.
ALTER TABLE jobs_job ADD COLUMN IF NOT EXISTS caller text;
ALTER TABLE jobs_recurring ADD COLUMN IF NOT EXISTS caller text;

-- Rows of earlier releases said who asked with two labels: `tool-call` and exactly one
-- `caller:<id>`. The id is the rest of that label, exact whatever it contains. Only jobs
-- that can still run are taken over; finished ones keep NULL (tools never show them).
UPDATE jobs_job SET caller = (
    SELECT substr(label, 8) FROM json_array_elements_text(jobs_job.labels) AS label
    WHERE left(label, 7) = 'caller:'
)
WHERE state IN ('Enqueued', 'Scheduled', 'Processing')
    AND EXISTS (SELECT 1 FROM json_array_elements_text(jobs_job.labels) AS label
                WHERE label = 'tool-call')
    AND (SELECT count(*) FROM json_array_elements_text(jobs_job.labels) AS label
         WHERE left(label, 7) = 'caller:') = 1;
UPDATE jobs_recurring SET caller = (
    SELECT substr(label, 8) FROM json_array_elements_text(jobs_recurring.labels) AS label
    WHERE left(label, 7) = 'caller:'
)
WHERE EXISTS (SELECT 1 FROM json_array_elements_text(jobs_recurring.labels) AS label
              WHERE label = 'tool-call')
    AND (SELECT count(*) FROM json_array_elements_text(jobs_recurring.labels) AS label
         WHERE left(label, 7) = 'caller:') = 1;

-- A caller's pending jobs (list, quota) and schedules (list in id order, quota).
CREATE INDEX IF NOT EXISTS jobs_job_caller ON jobs_job (caller, state, id) WHERE caller IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_recurring_caller ON jobs_recurring (caller, id) WHERE caller IS NOT NULL;
