-- Leases that hold under every fault.
-- `token`: raised by every claim and never lowered; every write of an attempt (its
-- result, progress, log lines, steps, the renewal of its lease) names the token of its
-- claim and applies only while the job still has it.
ALTER TABLE jobs_job ADD COLUMN token INTEGER NOT NULL DEFAULT 0;
-- `ahead`: claimed ahead of a free worker and, as its server last said, not started; a
-- rescue puts such a job back without counting the attempt.
ALTER TABLE jobs_job ADD COLUMN ahead INTEGER NOT NULL DEFAULT 0;
-- `rescues`: how often the job was rescued since it was created or requeued.
ALTER TABLE jobs_job ADD COLUMN rescues INTEGER NOT NULL DEFAULT 0;
