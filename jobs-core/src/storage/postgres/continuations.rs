//! Continuations on PostgreSQL: what a parent's result or deletion does to the jobs
//! awaiting it. Both are parts of the statement that records the result or the
//! deletion, so they cost no round trip of their own.

/// The part of a result statement that, after the CTE `updated` (the finished parents:
/// `id`, `state`, `at`), moves their direct awaiting continuations: those of a succeeded
/// parent to `Enqueued` (its `on_failure` ones to `Deleted`), the `on_failure` ones of a
/// failed parent to `Enqueued`; with a history row each. Defines `released` (`id`,
/// `attempt`, `at`) for what follows.
pub(super) const RELEASE: &str = "released AS ( \
                 UPDATE jobs_job AS child SET state = 'Enqueued', run_at = updated.at, \
                     updated_at = updated.at \
                 FROM updated WHERE child.parent_id = updated.id AND child.state = 'Awaiting' \
                     AND ((updated.state = 'Succeeded' AND NOT child.on_failure) \
                         OR (updated.state = 'Failed' AND child.on_failure)) \
                 RETURNING child.id, child.attempt, updated.at \
             ), dropped AS ( \
                 UPDATE jobs_job AS child SET state = 'Deleted', updated_at = updated.at \
                 FROM updated WHERE child.parent_id = updated.id AND child.state = 'Awaiting' \
                     AND updated.state = 'Succeeded' AND child.on_failure \
                 RETURNING child.id, child.attempt, updated.at \
             ), child_history AS ( \
                 INSERT INTO jobs_event (job_id, at, state, attempt) \
                 SELECT id, at, 'Enqueued', attempt FROM released \
                 UNION ALL SELECT id, at, 'Deleted', attempt FROM dropped \
             )";

/// The recursive part of a `WITH RECURSIVE {parents} AS (…)` that adds the awaiting
/// continuations of the rows already in `{parents}`, transitively, and the awaiting
/// fan-in jobs of the batches those continuations are members of (a batch that is a
/// step of a chain: gone with the job before it, so its end releases nothing); `extra`
/// is appended to each added row's columns (`", 1"` for a depth column).
pub(super) fn cascade(parents: &str, extra: &str) -> String {
    format!(
        " UNION SELECT next.id{extra} FROM {parents} \
         JOIN jobs_job AS child ON child.parent_id = {parents}.id AND child.state = 'Awaiting' \
         LEFT JOIN jobs_batch AS batch ON batch.id = child.batch_id \
         CROSS JOIN LATERAL (VALUES (child.id), (batch.then_id), (batch.on_failure_id)) \
             AS next (id) \
         JOIN jobs_job AS awaiting ON awaiting.id = next.id AND awaiting.state = 'Awaiting'"
    )
}
