-- Each label of each job, for the dashboard's search by label: a search reads the
-- label's own rows, newest job first, instead of every job's JSON labels. Triggers keep
-- it in step with `jobs_job.labels`, whoever writes the row (an enqueue, a unique job
-- replaced, the prune), so older builds keep it too. Jobs without labels (`'[]'`) add
-- nothing and cost one comparison.
CREATE TABLE IF NOT EXISTS jobs_job_label (
    label  TEXT NOT NULL,
    job_id TEXT NOT NULL,
    PRIMARY KEY (label, job_id)
) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS jobs_job_label_added AFTER INSERT ON jobs_job
WHEN new.labels <> '[]'
BEGIN
    INSERT OR IGNORE INTO jobs_job_label (label, job_id)
        SELECT value, new.id FROM json_each(new.labels) WHERE type = 'text';
END;

CREATE TRIGGER IF NOT EXISTS jobs_job_label_changed AFTER UPDATE OF labels ON jobs_job
WHEN new.labels IS NOT old.labels
BEGIN
    DELETE FROM jobs_job_label WHERE job_id = old.id
        AND label IN (SELECT value FROM json_each(old.labels) WHERE type = 'text');
    INSERT OR IGNORE INTO jobs_job_label (label, job_id)
        SELECT value, new.id FROM json_each(new.labels) WHERE type = 'text';
END;

CREATE TRIGGER IF NOT EXISTS jobs_job_label_removed AFTER DELETE ON jobs_job
WHEN old.labels <> '[]'
BEGIN
    DELETE FROM jobs_job_label WHERE job_id = old.id
        AND label IN (SELECT value FROM json_each(old.labels) WHERE type = 'text');
END;

INSERT OR IGNORE INTO jobs_job_label (label, job_id)
    SELECT label.value, jobs_job.id FROM jobs_job, json_each(jobs_job.labels) AS label
    WHERE jobs_job.labels <> '[]' AND label.type = 'text';
