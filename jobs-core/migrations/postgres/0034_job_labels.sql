-- Each label of each job, for the dashboard's search by label: a search reads the
-- label's own rows, newest job first, instead of every job's JSON labels. Triggers keep
-- it in step with `jobs_job.labels`, whoever writes the row (an enqueue, a unique job
-- replaced, the prune), so older builds keep it too. Jobs without labels (`'[]'`) add
-- nothing and cost one comparison. The jobs already stored are added by 0035, outside
-- this transaction, so that the job table's writers are not held while it reads.
CREATE TABLE IF NOT EXISTS jobs_job_label (
    label  text NOT NULL,
    job_id uuid NOT NULL,
    PRIMARY KEY (label, job_id)
);

CREATE OR REPLACE FUNCTION jobs_job_label_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.labels::text <> '[]' THEN
        DELETE FROM jobs_job_label WHERE job_id = OLD.id
            AND label IN (SELECT json_array_elements_text(OLD.labels));
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.labels::text <> '[]' THEN
        INSERT INTO jobs_job_label (label, job_id)
            SELECT DISTINCT label, NEW.id FROM json_array_elements_text(NEW.labels) AS label
            ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS jobs_job_label_added ON jobs_job;
CREATE TRIGGER jobs_job_label_added AFTER INSERT ON jobs_job
    FOR EACH ROW WHEN (NEW.labels::text <> '[]') EXECUTE FUNCTION jobs_job_label_sync();
DROP TRIGGER IF EXISTS jobs_job_label_changed ON jobs_job;
CREATE TRIGGER jobs_job_label_changed AFTER UPDATE OF labels ON jobs_job
    FOR EACH ROW WHEN (NEW.labels::text IS DISTINCT FROM OLD.labels::text)
    EXECUTE FUNCTION jobs_job_label_sync();
DROP TRIGGER IF EXISTS jobs_job_label_removed ON jobs_job;
CREATE TRIGGER jobs_job_label_removed AFTER DELETE ON jobs_job
    FOR EACH ROW WHEN (OLD.labels::text <> '[]') EXECUTE FUNCTION jobs_job_label_sync();
