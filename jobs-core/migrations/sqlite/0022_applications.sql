-- The newest release of each application that registered its `#[recurring]`
-- declarations: a server of an older release (a node not yet replaced during a rolling
-- deploy, restarting) leaves them as the newer one left them.
CREATE TABLE IF NOT EXISTS jobs_application (
    name TEXT PRIMARY KEY NOT NULL,
    release TEXT NOT NULL,
    registered_at INTEGER NOT NULL
);
