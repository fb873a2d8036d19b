-- The prune's index holds only the jobs a prune takes, succeeded and deleted ones. As a
-- full index on `(state, updated_at, id)` it gained an entry at every enqueue and moved
-- one at every claim, result, retry and sleep, for jobs no prune would take before they
-- finished: on the claim and complete of plain SQL that cost about a fifth of SQLite's
-- speed. Now an enqueue and a claim leave it alone and a success adds one entry. The
-- name stays and the predicate is a disjunction of the prune's own terms, so the
-- statements of older builds (`INDEXED BY jobs_job_state_updated_id … WHERE state =
-- 'Succeeded'`) still find it during a rolling deploy.
DROP INDEX IF EXISTS jobs_job_state_updated_id;
CREATE INDEX IF NOT EXISTS jobs_job_state_updated_id ON jobs_job (state, updated_at, id)
    WHERE state = 'Succeeded' OR state = 'Deleted';
