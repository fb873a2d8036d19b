-- The labels of a recurring job's runs: the job's own, and those the caller added
-- (an agent tool call records who asked).
ALTER TABLE jobs_recurring ADD COLUMN labels json NOT NULL DEFAULT '[]';
