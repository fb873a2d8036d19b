-- Rate limits: the starts of each rate-limited scope (`queue:<name>`), one row per
-- claim with how many jobs it started, kept while the claim's window may still count
-- them.
CREATE TABLE IF NOT EXISTS jobs_rate_start (
    scope text NOT NULL,
    started_at timestamptz NOT NULL,
    starts integer NOT NULL
);

CREATE INDEX IF NOT EXISTS jobs_rate_start_scope ON jobs_rate_start (scope, started_at);

-- How many jobs of a scope a claim may start: `p_count` less the starts recorded
-- within `p_window` microseconds before now, where now is the database's clock plus
-- `p_offset` microseconds (the claimer's `Clock::lease_offset`, zero for a real clock),
-- as leases are: servers whose clocks disagree count the same window. It takes a
-- transaction-scoped advisory lock on the scope first, so the claims of a scope run one
-- after the other across every server; its count is a statement of its own, whose
-- snapshot, taken after the lock, sees the starts every earlier claim of the scope
-- committed (the claim statement records its own, at the database's clock plus the
-- offset, before it commits). Rows that left the window are deleted here, under the
-- same lock.
CREATE OR REPLACE FUNCTION jobs_rate_room(
    p_scope text,
    p_offset bigint,
    p_count bigint,
    p_window bigint
) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_since timestamptz;
    v_started bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('jobs_rate:' || p_scope, 0));
    v_since := clock_timestamp() + (p_offset - p_window) * interval '1 microsecond';
    DELETE FROM jobs_rate_start WHERE scope = p_scope AND started_at <= v_since;
    SELECT coalesce(sum(starts), 0) INTO v_started FROM jobs_rate_start
    WHERE scope = p_scope AND started_at > v_since;
    RETURN greatest(p_count - v_started, 0);
END
$$;
