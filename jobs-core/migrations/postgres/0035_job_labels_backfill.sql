-- The labels of the jobs stored before 0034, in one statement outside a transaction:
-- it reads the job table without holding its writers, and the triggers of 0034 add
-- what is enqueued meanwhile (a conflict is a label already added).
INSERT INTO jobs_job_label (label, job_id)
    SELECT DISTINCT label, jobs_job.id FROM jobs_job, json_array_elements_text(jobs_job.labels) AS label
    WHERE jobs_job.labels::text <> '[]'
    ON CONFLICT DO NOTHING;
