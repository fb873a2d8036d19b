//! What a running job can ask of the runtime: who it is, the time, progress and log
//! lines for the dashboard, durable steps, sleeps and waits for events, and whether it
//! should stop.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::job::info::LogLevel;
use crate::server::Write;
use crate::storage::{
    EventWait, Fence, LogLine, ProgressUpdate, RunningStore, SignalStore, WaitState, kept_since,
};
use crate::{Error, JobId, Jobs};

/// Most log lines kept per attempt; the rest are counted, not stored.
pub(crate) const MAX_LOG_LINES: u32 = 1000;

/// How a wait for an event ended, as its outcome step stores it.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum WaitOutcome<T> {
    Event(T),
    Timeout,
}

/// The running job's view of the runtime, injected into a `#[job]` fn that takes a
/// `ctx: JobContext` parameter. Cheap to clone.
#[derive(Clone)]
pub struct JobContext {
    inner: Arc<ContextInner>,
}

struct ContextInner {
    id: JobId,
    /// The claim this attempt runs under: every write of the attempt names it.
    token: i64,
    name: String,
    attempt: u32,
    jobs: Jobs,
    writes: mpsc::UnboundedSender<Write>,
    cancelled: CancellationToken,
    logged: AtomicU32,
    suspend: Arc<Suspend>,
}

/// A job's request to stop this attempt and run again at a time (a durable sleep, or a
/// wait for an event until its deadline), which the worker running the attempt waits
/// for beside the attempt.
#[derive(Debug, Default)]
pub(crate) struct Suspend {
    request: Mutex<Option<Suspension>>,
    requested: tokio::sync::Notify,
}

/// Until when a job suspends, why (the history row's message), and the event that may
/// resume it earlier.
#[derive(Debug, Clone)]
pub(crate) struct Suspension {
    pub(crate) until: DateTime<Utc>,
    pub(crate) note: String,
    pub(crate) wait: Option<EventWait>,
}

impl Suspend {
    fn request(&self, suspension: Suspension) {
        *self
            .request
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(suspension);
        self.requested.notify_one();
    }

    /// Resolves when the job asked to be run again later.
    pub(crate) async fn requested(&self) -> Suspension {
        loop {
            if let Some(request) = self
                .request
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
            {
                return request;
            }
            self.requested.notified().await;
        }
    }
}

impl fmt::Debug for JobContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobContext")
            .field("id", &self.inner.id)
            .field("name", &self.inner.name)
            .field("attempt", &self.inner.attempt)
            .finish_non_exhaustive()
    }
}

impl JobContext {
    /// The context of the attempt of `claim` (the job and its claim's token).
    pub(crate) fn new(
        claim: Fence,
        name: String,
        attempt: u32,
        jobs: Jobs,
        writes: mpsc::UnboundedSender<Write>,
        cancelled: CancellationToken,
        suspend: Arc<Suspend>,
    ) -> Self {
        Self {
            inner: Arc::new(ContextInner {
                id: claim.id,
                token: claim.token,
                name,
                attempt,
                jobs,
                writes,
                cancelled,
                logged: AtomicU32::new(0),
                suspend,
            }),
        }
    }

    /// The id of this job.
    pub fn id(&self) -> JobId {
        self.inner.id
    }

    /// The registered name of this job's type.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Which attempt this is: 1 for the first run, 2 for the first retry, …
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// The current time, from the server's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.jobs.now()
    }

    /// The client, to enqueue more work from inside a job.
    pub fn jobs(&self) -> &Jobs {
        &self.inner.jobs
    }

    /// Resolves when the job should stop: it was deleted, it ran past its `timeout`, its
    /// server lost (or could not renew) its lease, or the server is shutting down past
    /// its grace period. The server also drops the job's future then, so a job stops at
    /// its next `.await` even if it never calls this; tasks the job spawned should watch
    /// this to stop with it.
    pub async fn cancelled(&self) {
        self.inner.cancelled.cancelled().await
    }

    /// Whether the job should stop.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.is_cancelled()
    }

    /// Reports how far the job has come, e.g. `ctx.progress(2, 3).await` after two of
    /// three steps; the dashboard shows it as a progress bar.
    pub async fn progress(&self, done: u64, total: u64) {
        let update = ProgressUpdate {
            job_id: self.inner.id,
            token: self.inner.token,
            done: done.min(total),
            total,
        };
        // The server outlives its jobs' contexts: the channel is open.
        let _ = self.inner.writes.send(Write::Progress(update));
    }

    /// The job's log, kept with the job and shown on the dashboard:
    /// `ctx.log().info("calling the model")`.
    pub fn log(&self) -> JobLog<'_> {
        JobLog { context: self }
    }

    /// Runs a durable step: the first time, runs `step` and stores its result; on a
    /// retry of the job, returns the stored result without running `step` again. So a
    /// job whose third step fails pays for its first two only once.
    ///
    /// Names identify steps within a job: keep them stable and distinct. The result is
    /// stored as JSON, so it must survive a serde round trip.
    ///
    /// ```no_run
    /// # async fn demo(ctx: jobs_core::JobContext) -> jobs_core::Result<()> {
    /// let summary: String = ctx
    ///     .step("summarize", || async { Ok::<_, jobs_core::Error>("a summary".to_owned()) })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn step<T, E, F, Fut>(&self, name: &str, step: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        let storage = self.inner.jobs.storage();
        if let Some(stored) = storage.step_get(self.inner.id, name).await? {
            self.log().debug(format!(
                "step `{name}`: result stored by an earlier attempt"
            ));
            return serde_json::from_str(&stored).map_err(|error| E::from(Error::Serialize(error)));
        }
        let value = step().await?;
        let json =
            serde_json::to_string(&value).map_err(|error| E::from(Error::Serialize(error)))?;
        storage
            .step_put(self.fence(), name, &json, self.now())
            .await?;
        Ok(value)
    }

    /// Sleeps durably: the first time the job reaches this sleep, its end time (now +
    /// `duration`) is stored under `name` and the attempt stops there, holding no
    /// worker, no task and no memory; the job waits `Scheduled` until then, across
    /// restarts and deploys, and its next run (not counted as an attempt) goes through
    /// the code before the sleep again, where [`step`](Self::step) answers from the
    /// store, and on past it. Reached again after its time, the sleep returns at once.
    ///
    /// ```no_run
    /// # async fn demo(ctx: jobs_core::JobContext) -> Result<(), jobs_core::Error> {
    /// let sent: String = ctx
    ///     .step("first message", || async { Ok::<_, jobs_core::Error>("sent".to_owned()) })
    ///     .await?;
    /// ctx.sleep("three days", std::time::Duration::from_secs(3 * 86_400)).await?;
    /// // three days later, after any number of restarts
    /// # let _ = sent; Ok(()) }
    /// ```
    ///
    /// Each sleep of a job needs its own `name`. Fails only when the store cannot be
    /// read or written (a failed attempt, retried).
    pub async fn sleep(&self, name: &str, duration: Duration) -> Result<(), Error> {
        let key = format!("sleep:{name}");
        let storage = self.inner.jobs.storage();
        let until: DateTime<Utc> = match storage.step_get(self.inner.id, &key).await? {
            Some(stored) => serde_json::from_str(&stored)?,
            None => {
                let now = self.now();
                let until = chrono::Duration::from_std(duration)
                    .ok()
                    .and_then(|duration| now.checked_add_signed(duration))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                storage
                    .step_put(self.fence(), &key, &serde_json::to_string(&until)?, now)
                    .await?;
                until
            }
        };
        if self.now() >= until {
            return Ok(());
        }
        self.inner.suspend.request(Suspension {
            until,
            note: format!("sleeps until {} (`{name}`)", until.to_rfc3339()),
            wait: None,
        });
        // The worker stops this attempt; this future is dropped without resolving.
        std::future::pending().await
    }

    /// Waits durably for the event `name` with `key`, sent by [`Jobs::send_event`]
    /// (from anywhere: a web handler, another job, another process), for at most
    /// `timeout`: `Some(payload)` when it came, `None` when the time ran out first.
    ///
    /// Like [`sleep`](Self::sleep), the wait holds no worker: the attempt stops here
    /// and the job waits `Scheduled` until its deadline (the dashboard shows the event
    /// and the deadline), across restarts. The event moves it to `Enqueued` at once;
    /// its next run (not counted as an attempt) replays the code before the wait, where
    /// [`step`](Self::step) answers from the store, and the wait returns the payload.
    /// What the wait returned is stored like a step's result: a later retry of the job
    /// gets the same payload (or the same timeout) without waiting again.
    ///
    /// An event sent *before* the wait began counts too: events are kept for
    /// [`EVENT_RETENTION`](crate::EVENT_RETENTION), and a wait takes the earliest
    /// one of its name and key sent within that window. An event is seen by every job
    /// that waits for it, not consumed by the first: keys should name one occasion (a
    /// draft's id, a conversation turn). A job waits once per name and key: reaching
    /// the same wait again returns what the first returned.
    ///
    /// ```no_run
    /// # #[derive(serde::Deserialize)] struct Approval { by: String }
    /// # async fn demo(ctx: jobs_core::JobContext, draft: String) -> Result<(), jobs_core::Error> {
    /// let day = std::time::Duration::from_secs(86_400);
    /// match ctx.wait_for_event::<Approval>("approval", &draft, 2 * day).await? {
    ///     Some(approval) => { /* announce, approved by approval.by */ }
    ///     None => { /* nobody answered within two days */ }
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// Fails when the store cannot be read or written (a failed attempt, retried), and
    /// when the payload does not read as `T` ([`Error::Serialize`]).
    pub async fn wait_for_event<T: DeserializeOwned>(
        &self,
        name: &str,
        key: &str,
        timeout: Duration,
    ) -> Result<Option<T>, Error> {
        let wait = EventWait {
            name: name.to_owned(),
            key: key.to_owned(),
        };
        let now = self.now();
        let timeout = chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
        let state = self
            .inner
            .jobs
            .storage()
            .signal_wait(self.fence(), &wait, timeout, kept_since(now), now)
            .await?;
        let until = match state {
            WaitState::Ended(outcome) => {
                return Ok(match serde_json::from_str(&outcome)? {
                    WaitOutcome::Event(payload) => Some(payload),
                    WaitOutcome::Timeout => None,
                });
            }
            WaitState::Pending { until } => until,
        };
        self.inner.suspend.request(Suspension {
            until,
            note: format!(
                "waits for the event `{name}` for `{key}` until {}",
                until.to_rfc3339()
            ),
            wait: Some(wait),
        });
        // The worker stops this attempt; this future is dropped without resolving.
        std::future::pending().await
    }

    fn fence(&self) -> Fence {
        Fence {
            id: self.inner.id,
            token: self.inner.token,
        }
    }

    pub(crate) fn write_log(&self, level: LogLevel, message: String) {
        let logged = self.inner.logged.fetch_add(1, Ordering::Relaxed);
        let message = match logged.cmp(&MAX_LOG_LINES) {
            std::cmp::Ordering::Less => message,
            std::cmp::Ordering::Equal => {
                format!("… more than {MAX_LOG_LINES} lines in this attempt; the rest are not kept")
            }
            std::cmp::Ordering::Greater => return,
        };
        let line = LogLine {
            job_id: self.inner.id,
            token: self.inner.token,
            at: self.now(),
            attempt: self.inner.attempt,
            level,
            message,
        };
        let _ = self.inner.writes.send(Write::Log(line));
    }
}

/// Writes lines to a running job's log; see [`JobContext::log`].
#[derive(Debug, Clone, Copy)]
pub struct JobLog<'a> {
    context: &'a JobContext,
}

impl JobLog<'_> {
    /// A line for debugging.
    pub fn debug(&self, message: impl fmt::Display) {
        self.context.write_log(LogLevel::Debug, message.to_string());
    }

    /// A line about normal progress.
    pub fn info(&self, message: impl fmt::Display) {
        self.context.write_log(LogLevel::Info, message.to_string());
    }

    /// A line about something unexpected that the job worked around.
    pub fn warn(&self, message: impl fmt::Display) {
        self.context.write_log(LogLevel::Warn, message.to_string());
    }

    /// A line about a failure.
    pub fn error(&self, message: impl fmt::Display) {
        self.context.write_log(LogLevel::Error, message.to_string());
    }
}

tokio::task_local! {
    /// The job whose attempt this task is running, for [`JobLogLayer`].
    pub(crate) static CURRENT_JOB: JobContext;
}

/// A `tracing` layer that copies events emitted inside a job into that job's log, so
/// `tracing::info!` in job code lands on the dashboard:
/// `tracing_subscriber::registry().with(fmt::layer()).with(jobs::JobLogLayer).init()`.
///
/// Events from `sqlx` and from `jobs` itself are left out.
#[derive(Debug, Clone, Copy, Default)]
pub struct JobLogLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for JobLogLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let target = event.metadata().target();
        if target.starts_with("sqlx") || target.starts_with("jobs_core") {
            return;
        }
        let _ = CURRENT_JOB.try_with(|context| {
            let level = match *event.metadata().level() {
                tracing::Level::ERROR => LogLevel::Error,
                tracing::Level::WARN => LogLevel::Warn,
                tracing::Level::INFO => LogLevel::Info,
                _ => LogLevel::Debug,
            };
            let mut text = EventText::default();
            event.record(&mut text);
            context.write_log(level, text.0);
        });
    }
}

/// An event's message followed by its other fields as `name=value`.
#[derive(Default)]
struct EventText(String);

impl tracing::field::Visit for EventText {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        use std::fmt::Write;
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            self.0.push_str(field.name());
            self.0.push('=');
            self.0.push_str(value);
        }
    }
}
