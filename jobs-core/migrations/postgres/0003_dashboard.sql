-- Throughput over time reads finished attempts (succeeded, or failed with an error) by time.
CREATE INDEX jobs_event_finished ON jobs_event (at) WHERE state = 'Succeeded' OR message IS NOT NULL;
