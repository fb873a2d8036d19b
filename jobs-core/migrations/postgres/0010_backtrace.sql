-- Where a failed attempt happened: the backtrace of a panic inside the job, or the one an
-- `anyhow::Error` carried, cut at 16 KiB. NULL when none was captured.
ALTER TABLE jobs_event ADD COLUMN backtrace text;
