-- The job names each server runs, as a JSON array, so that a waiting job whose name no
-- server registers can say so. NULL on the row of a server of an older release, which
-- does not say: it counts as running every name.
ALTER TABLE jobs_server ADD COLUMN jobs TEXT;

-- Why the last server that tried could not fire a recurring job (a zone or cron its
-- build cannot read); NULL when it fired, or never failed.
ALTER TABLE jobs_recurring ADD COLUMN error TEXT;

-- The application whose binary declared a recurring job in code (`#[recurring]`): a
-- server disables only its own application's declarations that it no longer has. NULL
-- on rows stored by an older release (or through the API): such a code row is disabled
-- by any application that does not declare it, and taken back by the one that does.
ALTER TABLE jobs_recurring ADD COLUMN application TEXT;
