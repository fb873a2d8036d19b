//! Helpers for the tests of applications that use `jobs`, in the manner of
//! `Oban.Testing`, River's `rivertest` and `Sidekiq::Testing`: a clock moved by hand,
//! "a job like this was enqueued" on its typed arguments, one job run inline with the
//! state the app gives, and every due job run until none is left. They work on a real
//! store (a temporary SQLite file is enough), so what they see is what production does.
//!
//! ```rust,ignore
//! use jobs::testing::{self, ManualClock};
//!
//! let clock = ManualClock::new(chrono::Utc::now());
//! let jobs = Jobs::builder().url(&db_url).clock(clock.clone()).connect().await?;
//! remind_tomorrow(&jobs, 7).await?; // the code under test
//! let reminder = testing::assert_enqueued::<SendReminder>(&jobs, |r| r.user_id == 7).await;
//! clock.advance(Duration::from_secs(24 * 3600));
//! let drained = testing::drain(JobServer::builder(jobs.clone())).await?;
//! assert_eq!(drained.succeeded, 1);
//! ```

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use crate::clock::ManualClock;
use std::sync::Arc;

use crate::job::context::{CURRENT_JOB, Suspend};
use crate::server::Write;
use crate::storage::{Fence, LifecycleStore};
use crate::{
    Failure, Invocation, Job, JobContext, JobId, JobQuery, JobServerBuilder, JobState, Jobs,
    Result, StateMap,
};

/// A job of type `J` that waits to run, with its arguments decoded.
#[derive(Debug, Clone)]
pub struct Waiting<J> {
    /// Its id.
    pub id: JobId,
    /// Its arguments.
    pub job: J,
    /// `Enqueued`, `Scheduled` or `Awaiting` (a continuation waiting for its parent).
    pub state: JobState,
    /// When it may run.
    pub run_at: DateTime<Utc>,
    /// Its labels.
    pub labels: Vec<String>,
}

/// Every job of type `J` that waits to run (`Enqueued`, `Scheduled` or `Awaiting`),
/// oldest first, with its arguments decoded.
///
/// # Panics
///
/// When a stored payload does not decode as `J` (the job's arguments changed).
pub async fn waiting<J: Job>(jobs: &Jobs) -> Result<Vec<Waiting<J>>> {
    let name = J::DESCRIPTOR.name();
    let mut found = Vec::new();
    for state in [JobState::Enqueued, JobState::Scheduled, JobState::Awaiting] {
        let mut after = None;
        loop {
            let page = jobs
                .list(JobQuery {
                    state: Some(state),
                    name: Some(name.to_owned()),
                    after,
                    limit: 1000,
                    ..JobQuery::default()
                })
                .await?;
            for summary in &page.items {
                let info = jobs.get(summary.id).await?;
                let job = serde_json::from_value(info.payload.clone()).unwrap_or_else(|error| {
                    panic!(
                        "job {} of `{name}` does not decode as {}: {error}",
                        info.id,
                        std::any::type_name::<J>()
                    )
                });
                found.push(Waiting {
                    id: info.id,
                    job,
                    state: info.state,
                    run_at: info.run_at,
                    labels: summary.labels.clone(),
                });
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    // Ids are time-ordered: oldest first.
    found.sort_by_key(|waiting| waiting.id.as_uuid());
    Ok(found)
}

/// The first job of type `J` waiting to run whose arguments satisfy `matches`.
///
/// # Panics
///
/// When there is none, listing the jobs of that type that wait.
pub async fn assert_enqueued<J: Job + fmt::Debug>(
    jobs: &Jobs,
    matches: impl Fn(&J) -> bool,
) -> Waiting<J> {
    let all = waiting::<J>(jobs).await.expect("list the waiting jobs");
    let names = J::DESCRIPTOR.name();
    match all.iter().position(|waiting| matches(&waiting.job)) {
        Some(index) => all.into_iter().nth(index).expect("the match"),
        None => panic!(
            "no `{names}` job waiting matches; waiting: {:?}",
            all.iter().map(|waiting| &waiting.job).collect::<Vec<_>>()
        ),
    }
}

/// Asserts that no job of type `J` waiting to run has arguments that satisfy `matches`.
///
/// # Panics
///
/// When one does, naming it.
pub async fn refute_enqueued<J: Job + fmt::Debug>(jobs: &Jobs, matches: impl Fn(&J) -> bool) {
    let all = waiting::<J>(jobs).await.expect("list the waiting jobs");
    if let Some(found) = all.iter().find(|waiting| matches(&waiting.job)) {
        panic!(
            "a `{}` job waiting matches: {:?} ({})",
            J::DESCRIPTOR.name(),
            found.job,
            found.id
        );
    }
}

/// Runs one job inline, in the calling task, with the state given: no store, no
/// server, no retry. The job's `JobContext` works as in a server (its log lines and
/// progress are collected in the answer), except that `ctx.step` stores nothing, so
/// every step runs.
#[derive(Debug, Clone)]
pub struct Inline {
    jobs: Jobs,
    state: StateMap,
    attempt: u32,
    parent: Option<Option<String>>,
}

/// What an inline run did.
#[derive(Debug)]
pub struct Performed<T = ()> {
    /// How the attempt ended: the job's result (what its fn returned), or its failure.
    pub result: std::result::Result<T, Failure>,
    /// The log lines it wrote, in order.
    pub logs: Vec<String>,
    /// The last progress it reported, as (done, total).
    pub progress: Option<(u64, u64)>,
}

impl Inline {
    /// Runs jobs with `jobs` as the client they receive (to enqueue follow-ups).
    pub fn new(jobs: &Jobs) -> Self {
        let mut state = StateMap::default();
        state.insert(jobs.clone());
        Self {
            jobs: jobs.clone(),
            state,
            attempt: 1,
            parent: None,
        }
    }

    /// Makes `value` available to jobs that take a `State<T>` of its type.
    #[must_use]
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// The attempt the job sees (`ctx.attempt()`); 1 unless set.
    #[must_use]
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    /// What the job before it returned, for a job that takes a `Parent<T>`.
    ///
    /// # Panics
    ///
    /// When `value` does not serialize.
    #[must_use]
    pub fn parent<T: serde::Serialize>(mut self, value: &T) -> Self {
        let json = serde_json::to_string(value).expect("the parent's result serializes");
        self.parent = Some((json != "null").then_some(json));
        self
    }

    /// Runs `job` once and says how it ended.
    pub async fn perform<J: Job>(&self, job: &J) -> Performed<J::Output> {
        let (writes, mut written) = mpsc::unbounded_channel();
        let suspend = Arc::new(Suspend::default());
        let context = JobContext::new(
            // No claim: what the job would store is dropped by the fence.
            Fence {
                id: JobId::new(),
                token: -1,
            },
            J::DESCRIPTOR.name().to_owned(),
            self.attempt,
            self.jobs.clone(),
            writes,
            CancellationToken::new(),
            suspend.clone(),
        );
        let payload = match serde_json::to_string(job) {
            Ok(payload) => payload,
            Err(error) => {
                return Performed {
                    result: Err(Failure::permanent(format!(
                        "the job does not serialize: {error}"
                    ))),
                    logs: Vec::new(),
                    progress: None,
                };
            }
        };
        let invocation = Invocation::new(payload, context.clone(), self.state.clone())
            .with_parent(self.parent.clone());
        let run = CURRENT_JOB.scope(context, J::DESCRIPTOR.run(invocation));
        // A job that goes to sleep (`ctx.sleep`, `ctx.wait_for_event`) stops there, as
        // in a server.
        let result = tokio::select! {
            result = run => result,
            suspension = suspend.requested() => Err(Failure::new(format!(
                "the job {}: an inline run stops at a sleep or a wait",
                suspension.note
            ))),
        };
        let result = result.and_then(|value| {
            serde_json::from_str(value.as_deref().unwrap_or("null")).map_err(|error| {
                Failure::permanent(format!("the job's result does not read back: {error}"))
            })
        });
        let mut logs = Vec::new();
        let mut progress = None;
        while let Ok(write) = written.try_recv() {
            match write {
                Write::Log(line) => logs.push(line.message),
                Write::Progress(update) => progress = Some((update.done, update.total)),
                Write::Completion(_) | Write::Stopped(_) => {}
            }
        }
        Performed {
            result,
            logs,
            progress,
        }
    }
}

/// How many jobs are in each final state after a [`drain`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    /// Jobs `Succeeded`.
    pub succeeded: u64,
    /// Jobs `Failed` for good.
    pub failed: u64,
    /// Jobs `Scheduled` for later (a retry, or a time not come yet on the clock).
    pub scheduled: u64,
}

/// Starts the server `builder` describes, runs every job that is due (and those they
/// enqueue, as they become due) until none is due or running, then stops it. Jobs due
/// later on the client's clock stay: move a [`ManualClock`] and drain again.
///
/// # Errors
///
/// When the server cannot start, the store cannot be read, or the jobs are not done
/// within `limit` (a minute by default; see [`drain_within`]).
pub async fn drain(builder: JobServerBuilder) -> Result<Drained> {
    drain_within(builder, Duration::from_secs(60)).await
}

/// [`drain`] with a time limit of `limit`.
///
/// # Errors
///
/// As [`drain`].
pub async fn drain_within(builder: JobServerBuilder, limit: Duration) -> Result<Drained> {
    let jobs = builder.jobs().clone();
    let server = builder.start().await?;
    let idle = tokio::time::timeout(limit, async {
        loop {
            if idle(&jobs).await? {
                return Ok::<_, crate::Error>(());
            }
            // The store is what tells; ask it again in a moment.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    server.shutdown().await;
    match idle {
        Ok(result) => result?,
        Err(_) => {
            return Err(crate::Error::Config(format!(
                "drain: jobs still due or running after {limit:?}"
            )));
        }
    }
    let mut drained = Drained::default();
    for (state, count) in jobs.count_by_state().await? {
        match state {
            JobState::Succeeded => drained.succeeded = count,
            JobState::Failed => drained.failed = count,
            JobState::Scheduled => drained.scheduled = count,
            _ => {}
        }
    }
    Ok(drained)
}

/// Whether nothing is running and nothing is due on the client's clock. Read in three
/// steps (counts, next due time, counts), so the answer holds only when the counts did
/// not move in between: every move of a job (claimed, finished, released) changes them.
async fn idle(jobs: &Jobs) -> Result<bool> {
    let before = jobs.count_by_state().await?;
    if before
        .iter()
        .any(|(state, count)| *state == JobState::Processing && *count > 0)
    {
        return Ok(false);
    }
    let next = jobs.storage().jobs_next_run_at().await?;
    if next.is_some_and(|due| due <= jobs.clock().now()) {
        return Ok(false);
    }
    Ok(jobs.count_by_state().await? == before)
}
