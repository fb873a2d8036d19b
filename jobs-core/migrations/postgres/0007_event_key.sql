-- History rows are only ever read per job, in order: one index on (job_id, seq) serves
-- that as the primary key, where a key on seq alone beside it cost a second index entry
-- for every event written (one per enqueue, claim and result).
ALTER TABLE jobs_event DROP CONSTRAINT jobs_event_pkey;
DROP INDEX jobs_event_job;
ALTER TABLE jobs_event ADD PRIMARY KEY (job_id, seq);
