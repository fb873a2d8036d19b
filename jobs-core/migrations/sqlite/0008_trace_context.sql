-- The W3C trace context (`traceparent`, and `tracestate` when set) of the span that
-- enqueued the job, so its runs continue the enqueuer's trace. NULL when the enqueue
-- had no context or the `opentelemetry` feature is off.
ALTER TABLE jobs_job ADD COLUMN trace_context text;
