-- A job's creation is said by its row: `created_at`, and now `created_state`, the state
-- it was stored in, as on SQLite since its migration 32. An insert of this build names
-- `created_state` and writes no history row of the creation; reading the history
-- derives that entry from the row. The row and its entry in `jobs_event_job` were a
-- tenth of a single enqueue's commit. An older build's insert (during a rolling deploy)
-- leaves the column NULL and writes its row as before, as every job stored before has,
-- so no history loses its start and none shows it twice. Adding a column without a
-- default rewrites no row: its lock is held for an instant.
ALTER TABLE jobs_job ADD COLUMN IF NOT EXISTS created_state text;
