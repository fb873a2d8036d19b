-- The runnable jobs of each queue in claim order, for the claims that read some queues
-- only (a limited or rated queue on its own, the queues a server serves, every queue
-- but the limited and paused ones): through `jobs_job_runnable` alone, such a claim
-- walked every runnable job of the other queues that came first in claim order, a
-- whole paused backlog on every claim.
CREATE INDEX IF NOT EXISTS jobs_job_queue_runnable ON jobs_job (queue, priority DESC, run_at)
    WHERE state IN ('Enqueued', 'Scheduled');
