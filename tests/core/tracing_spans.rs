//! Every enqueue records a `job.enqueue` span in the caller's trace, and every attempt
//! runs in a `job.run` span (id, name, queue, attempt, outcome) that the job's own
//! events nest under.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::support::{Backend, setup, wait_for_state};
use jobs::prelude::*;
use jobs::{JobServer, JobState};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

#[job(retries = 0, display = "Traced {n}")]
async fn traced(n: u32) -> Result<(), String> {
    tracing::info!(n, "inside the job");
    if n == 2 {
        return Err("two fails".to_owned());
    }
    Ok(())
}

/// A span as recorded: its name and fields (those recorded later included), and the
/// spans its events came from.
#[derive(Debug, Clone, Default)]
struct Recorded {
    name: String,
    fields: HashMap<String, String>,
    events: Vec<String>,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<HashMap<u64, Recorded>>>);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }
}

impl<S> Layer<S> for Recorder
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut span = Recorded {
            name: attrs.metadata().name().to_owned(),
            ..Recorded::default()
        };
        attrs.record(&mut Fields(&mut span.fields));
        self.0.lock().unwrap().insert(id.into_u64(), span);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(span) = self.0.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.event_span(event) {
            let mut fields = HashMap::new();
            event.record(&mut Fields(&mut fields));
            if let Some(recorded) = self.0.lock().unwrap().get_mut(&span.id().into_u64()) {
                recorded
                    .events
                    .push(fields.remove("message").unwrap_or_default());
            }
        }
    }
}

impl Recorder {
    fn spans(&self, name: &str) -> Vec<Recorded> {
        self.0
            .lock()
            .unwrap()
            .values()
            .filter(|span| span.name == name)
            .cloned()
            .collect()
    }
}

// One thread, so that the subscriber set for this test sees the server's tasks.
#[tokio::test(flavor = "current_thread")]
async fn enqueues_and_attempts_are_spans_with_their_outcome() {
    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone());
    let _default = tracing::subscriber::set_default(subscriber);
    let (_db, _clock, jobs, probe) = setup(Backend::Sqlite).await;
    let fine = jobs.enqueue(Traced { n: 1 }).await.unwrap();
    let failing = jobs.enqueue(Traced { n: 2 }).await.unwrap();

    let server = JobServer::builder(jobs.clone())
        .state(probe)
        .start()
        .await
        .unwrap();
    wait_for_state(&jobs, fine, JobState::Succeeded).await;
    wait_for_state(&jobs, failing, JobState::Failed).await;
    server.shutdown().await;

    let enqueued = recorder.spans("job.enqueue");
    assert_eq!(enqueued.len(), 2, "{enqueued:?}");
    let name = enqueued[0].fields["job.name"].clone();
    assert!(name.ends_with("traced"), "{name}");
    let runs = recorder.spans("job.run");
    let run_of = |id: jobs::JobId| {
        runs.iter()
            .find(|run| run.fields["job.id"] == id.to_string())
            .unwrap_or_else(|| panic!("no job.run span for {id}: {runs:?}"))
    };
    let run = run_of(fine);
    assert_eq!(run.fields["job.name"], name);
    assert_eq!(run.fields["job.queue"], "default");
    assert_eq!(run.fields["job.attempt"], "1");
    assert_eq!(run.fields["outcome"], "succeeded");
    assert_eq!(
        run.events,
        ["inside the job"],
        "the job's events nest in its span"
    );
    assert_eq!(run_of(failing).fields["outcome"], "failed");
}
