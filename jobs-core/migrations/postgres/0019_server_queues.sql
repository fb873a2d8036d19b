-- The queues each server serves and the limits it holds them to, as a JSON object
-- (`{"served": [...] or null, "limits": {...}, "global_limits": {...}}`), so the
-- dashboard can show every queue's limits. NULL on the row of a server of an older
-- release, which does not say.
ALTER TABLE jobs_server ADD COLUMN IF NOT EXISTS queues text;
