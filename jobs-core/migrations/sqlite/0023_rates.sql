-- Rate limits: the starts of each rate-limited scope (`queue:<name>`), one row per
-- claim with how many jobs it started, kept while the claim's window may still count
-- them. The claim sums a scope's rows after `now - window` and prunes the older ones,
-- under the database's write lock.
CREATE TABLE IF NOT EXISTS jobs_rate_start (
    scope TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    starts INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS jobs_rate_start_scope ON jobs_rate_start (scope, started_at);
