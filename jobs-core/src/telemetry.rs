//! OpenTelemetry trace propagation through the job's row: at enqueue the W3C trace
//! context of the enqueueing span is stored with the job (`jobs_job.trace_context`), and
//! each attempt's `job.run` span takes it as its parent, so a request's trace shows the
//! jobs it enqueued and every attempt of them, whichever process runs them.
//!
//! Stored as a JSON object of the W3C headers (`traceparent`, and `tracestate` when
//! set). Without the `opentelemetry` feature nothing is stored and nothing continued.

/// The trace context of `span` as stored with a job, or `None` when it has none (no
/// OpenTelemetry layer, a disabled span, or the feature off).
#[cfg(not(feature = "opentelemetry"))]
pub(crate) fn trace_context(_span: &tracing::Span) -> Option<String> {
    None
}

/// Makes `span` (not yet entered) a child of the stored trace context `stored`.
#[cfg(not(feature = "opentelemetry"))]
pub(crate) fn continue_trace(_span: &tracing::Span, _stored: Option<&str>) {}

#[cfg(feature = "opentelemetry")]
pub(crate) use otel::{continue_trace, trace_context};

#[cfg(feature = "opentelemetry")]
mod otel {
    use std::collections::BTreeMap;

    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    const TRACEPARENT: &str = "traceparent";
    const TRACESTATE: &str = "tracestate";

    /// The trace context of `span` as stored with a job, or `None` when it has none.
    pub(crate) fn trace_context(span: &tracing::Span) -> Option<String> {
        let context = span.context();
        let span_context = context.span().span_context().clone();
        if !span_context.is_valid() {
            return None;
        }
        let mut headers = BTreeMap::new();
        headers.insert(TRACEPARENT, traceparent(&span_context));
        let state = span_context.trace_state().header();
        if !state.is_empty() {
            headers.insert(TRACESTATE, state);
        }
        Some(serde_json::to_string(&headers).expect("a map of strings serializes"))
    }

    /// Makes `span` (not yet entered) a child of the stored context `stored`; a missing
    /// or unreadable context leaves it where it is.
    pub(crate) fn continue_trace(span: &tracing::Span, stored: Option<&str>) {
        let Some(parent) = stored.and_then(parse) else {
            return;
        };
        let parent = opentelemetry::Context::new().with_remote_span_context(parent);
        if let Err(error) = span.set_parent(parent) {
            tracing::debug!(%error, "job.run span does not continue the enqueue's trace");
        }
    }

    /// `version-trace_id-span_id-flags`, version `00`.
    fn traceparent(context: &SpanContext) -> String {
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            context.trace_id(),
            context.span_id(),
            context.trace_flags().to_u8()
        )
    }

    fn parse(stored: &str) -> Option<SpanContext> {
        let headers: BTreeMap<String, String> = serde_json::from_str(stored).ok()?;
        let mut parts = headers.get(TRACEPARENT)?.split('-');
        let (Some(version), Some(trace_id), Some(span_id), Some(flags)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        if version != "00" || parts.next().is_some() {
            return None;
        }
        let trace_id = TraceId::from_hex(trace_id).ok()?;
        let span_id = SpanId::from_hex(span_id).ok()?;
        let flags = TraceFlags::new(u8::from_str_radix(flags, 16).ok()?);
        let state = match headers.get(TRACESTATE) {
            Some(state) => state.parse::<TraceState>().ok()?,
            None => TraceState::default(),
        };
        let context = SpanContext::new(trace_id, span_id, flags, true, state);
        context.is_valid().then_some(context)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_stored_context_reads_back() {
            let context = SpanContext::new(
                TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
                SpanId::from_hex("00f067aa0ba902b7").unwrap(),
                TraceFlags::SAMPLED,
                false,
                "vendor=value".parse().unwrap(),
            );
            assert_eq!(
                traceparent(&context),
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            );
            let stored = format!(
                r#"{{"traceparent":"{}","tracestate":"vendor=value"}}"#,
                traceparent(&context)
            );
            let read = parse(&stored).unwrap();
            assert_eq!(read.trace_id(), context.trace_id());
            assert_eq!(read.span_id(), context.span_id());
            assert_eq!(read.trace_flags(), TraceFlags::SAMPLED);
            assert!(read.is_remote());
            assert_eq!(read.trace_state().header(), "vendor=value");
        }

        #[test]
        fn an_unreadable_context_is_ignored() {
            for stored in [
                "",
                "{}",
                r#"{"traceparent":"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#,
                r#"{"traceparent":"00-00000000000000000000000000000000-00f067aa0ba902b7-01"}"#,
                r#"{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"}"#,
            ] {
                assert!(parse(stored).is_none(), "{stored}");
            }
        }
    }
}
