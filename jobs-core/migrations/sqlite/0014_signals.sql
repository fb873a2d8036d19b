-- Events sent to jobs (`send_event`), kept for a while so that a wait that begins after
-- its event was sent still sees it; `jobs_event` holds the history rows, hence `signal`.
CREATE TABLE jobs_signal (
    seq     INTEGER PRIMARY KEY,
    name    TEXT NOT NULL,
    key     TEXT NOT NULL,
    payload TEXT NOT NULL,
    sent_at INTEGER NOT NULL
);
-- The earliest event of a name and key within the window, and the prune by age.
CREATE INDEX jobs_signal_match ON jobs_signal (name, key, sent_at);
CREATE INDEX jobs_signal_sent ON jobs_signal (sent_at);

-- A job waiting for an event: `Scheduled` at its deadline with the event's name and key.
-- Every completion but a wait clears them, so the index holds the waiting jobs only.
ALTER TABLE jobs_job ADD COLUMN wait_name TEXT;
ALTER TABLE jobs_job ADD COLUMN wait_key TEXT;
CREATE INDEX jobs_job_wait ON jobs_job (wait_name, wait_key)
    WHERE state = 'Scheduled' AND wait_name IS NOT NULL;
