//! What a job is to the runtime: the [`Job`] trait that `#[job]` implements, the static
//! [`JobDescriptor`] it registers, and what a running job receives.

use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::JobContext;

/// A job type: the data of one run, and how to run it.
///
/// `#[job]` implements this for the struct it generates from a fn's data parameters;
/// implementing it by hand is possible but rarely needed.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The static description registered with `inventory`.
    const DESCRIPTOR: JobDescriptor;

    /// The name shown for this run on the dashboard, e.g. "Send reminder to 7".
    fn display_name(&self) -> String;

    /// Labels of this run, e.g. `tenant-7`, for filtering on the dashboard.
    fn labels(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The queue of jobs that do not name one.
pub const DEFAULT_QUEUE: &str = "default";

/// How the server runs one attempt: decode the payload, inject what the fn asks for,
/// run it, and turn its outcome into `Ok` or a [`Failure`].
pub type RunFn = fn(Invocation) -> BoxFuture<'static, Result<(), Failure>>;

/// The JSON Schema of a job's data, as agent tools take it; `Err` says why the job has
/// none (a data type that does not implement `schemars::JsonSchema`).
pub type SchemaFn = fn() -> Result<serde_json::Value, String>;

/// The static description of a job type, built in a `const` by `#[job]` and collected
/// through `inventory`, so a server knows every job of the binary without registration calls.
#[derive(Debug, Clone, Copy)]
pub struct JobDescriptor {
    name: &'static str,
    retries: Option<u32>,
    queue: &'static str,
    priority: i32,
    timeout: Option<Duration>,
    schema: Option<SchemaFn>,
    tool: bool,
    run: RunFn,
}

impl JobDescriptor {
    /// A job named `name` (its stable registered id) that runs with `run`.
    pub const fn new(name: &'static str, run: RunFn) -> Self {
        Self {
            name,
            retries: None,
            queue: DEFAULT_QUEUE,
            priority: 0,
            timeout: None,
            schema: None,
            tool: true,
            run,
        }
    }

    /// Gives the job a JSON Schema of its data, which makes it offerable as an agent tool.
    pub const fn schema(mut self, schema: SchemaFn) -> Self {
        self.schema = Some(schema);
        self
    }

    /// Keeps the job out of every tool catalog, even one that allows it
    /// (`#[job(tool = false)]`).
    pub const fn not_a_tool(mut self) -> Self {
        self.tool = false;
        self
    }

    /// The JSON Schema of the job's data, if it was given one.
    pub fn schema_setting(&self) -> Option<SchemaFn> {
        self.schema
    }

    /// Whether the job may be offered as an agent tool.
    pub fn is_tool(&self) -> bool {
        self.tool
    }

    /// Puts the job's runs in `queue` (default `"default"`); a server can cap how many
    /// jobs of a queue run at once.
    pub const fn queue(mut self, queue: &'static str) -> Self {
        self.queue = queue;
        self
    }

    /// Sets the priority of the job's runs: higher runs first (default 0).
    pub const fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Fails an attempt that runs longer than `timeout`.
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The queue of the job's runs.
    pub fn queue_name(&self) -> &'static str {
        self.queue
    }

    /// The priority of the job's runs.
    pub fn priority_setting(&self) -> i32 {
        self.priority
    }

    /// How long one attempt may run, if limited.
    pub fn timeout_setting(&self) -> Option<Duration> {
        self.timeout
    }

    /// Sets how many times a failed run is retried (the server's default otherwise).
    pub const fn retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }

    /// The stable registered name: `module::path::fn_name` unless pinned with `name = "…"`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The retries this job asks for, if it set them.
    pub fn retries_setting(&self) -> Option<u32> {
        self.retries
    }

    pub(crate) fn run(&self, invocation: Invocation) -> BoxFuture<'static, Result<(), Failure>> {
        (self.run)(invocation)
    }
}

inventory::collect!(JobDescriptor);

/// Every job type registered in this binary, by name.
///
/// Built once from `inventory`; a name registered twice keeps the first and logs an error,
/// since two fns claiming one stored name would run each other's payloads.
pub(crate) fn registry() -> &'static HashMap<&'static str, &'static JobDescriptor> {
    static REGISTRY: std::sync::OnceLock<HashMap<&'static str, &'static JobDescriptor>> =
        std::sync::OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut map = HashMap::new();
        for descriptor in inventory::iter::<JobDescriptor> {
            if map.insert(descriptor.name, descriptor).is_some() {
                tracing::error!(
                    job = descriptor.name,
                    "two #[job] fns are registered under one name; pin one with #[job(name = \"…\")]"
                );
            }
        }
        map
    })
}

/// The names of every job type registered in this binary, sorted.
pub fn registered_jobs() -> Vec<&'static str> {
    let mut names: Vec<_> = registry().keys().copied().collect();
    names.sort_unstable();
    names
}

/// Why one attempt of a job failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    message: String,
    sources: Vec<String>,
    permanent: bool,
}

impl Failure {
    /// A failed attempt that is retried while retries remain.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            sources: Vec::new(),
            permanent: false,
        }
    }

    /// A failure that retrying cannot fix (unknown job, payload that does not decode):
    /// the job goes straight to `Failed`.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            permanent: true,
            ..Self::new(message)
        }
    }

    /// A failure from an error, with its `source()` chain.
    pub fn from_error(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut sources = Vec::new();
        let mut next = error.source();
        while let Some(source) = next {
            sources.push(source.to_string());
            next = source.source();
        }
        Self {
            message: error.to_string(),
            sources,
            permanent: false,
        }
    }

    /// The error's own message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The messages of the error's sources, outermost first.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// Whether retrying is pointless.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for source in &self.sources {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

/// A value the application gave the server with `.state(…)`, injected into every job
/// that takes a `State<T>` parameter — axum's `State`, for jobs.
#[derive(Debug, Clone, Copy, Default)]
pub struct State<T>(pub T);

/// The values given to a server with `.state(…)`, one per type.
#[derive(Clone, Default)]
pub struct StateMap(Arc<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>);

impl fmt::Debug for StateMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateMap")
            .field("values", &self.0.len())
            .finish()
    }
}

impl StateMap {
    pub(crate) fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        Arc::make_mut(&mut self.0).insert(TypeId::of::<T>(), Arc::new(value));
    }

    fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.0
            .get(&TypeId::of::<T>())
            .and_then(|value| value.downcast_ref::<T>())
            .cloned()
    }
}

/// One attempt as handed to a job's [`RunFn`]: the stored payload, the context and the
/// server's state.
#[derive(Debug)]
pub struct Invocation {
    payload: String,
    context: JobContext,
    state: StateMap,
}

impl Invocation {
    pub(crate) fn new(payload: String, context: JobContext, state: StateMap) -> Self {
        Self {
            payload,
            context,
            state,
        }
    }

    /// Decodes the stored payload; a payload that no longer decodes (the job's
    /// parameters changed) is a permanent failure that says why.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Failure> {
        serde_json::from_str(&self.payload).map_err(|error| {
            Failure::permanent(format!(
                "payload of job `{}` does not decode as {}: {error}",
                self.context.name(),
                type_name::<T>()
            ))
        })
    }

    /// Builds one injected parameter.
    pub fn extract<T: FromInvocation>(&self) -> Result<T, Failure> {
        T::from_invocation(self)
    }
}

/// A job parameter filled in by the runtime instead of the payload.
pub trait FromInvocation: Sized {
    /// Builds the parameter for this attempt.
    fn from_invocation(invocation: &Invocation) -> Result<Self, Failure>;
}

impl FromInvocation for JobContext {
    fn from_invocation(invocation: &Invocation) -> Result<Self, Failure> {
        Ok(invocation.context.clone())
    }
}

impl<T: Clone + Send + Sync + 'static> FromInvocation for State<T> {
    fn from_invocation(invocation: &Invocation) -> Result<Self, Failure> {
        invocation.state.get::<T>().map(State).ok_or_else(|| {
            Failure::permanent(format!(
                "job `{}` takes State<{}> but the server was given no such state; \
                 add `.state(value)` to the JobServer builder",
                invocation.context.name(),
                type_name::<T>()
            ))
        })
    }
}

/// Turns whatever error a job fn returned into a [`Failure`], keeping as much as the
/// type allows: the source chain of a `std::error::Error`, of an `anyhow::Error` or a
/// boxed error, or just the `Display` text.
///
/// `#[job]` calls `(&&&ErrorProbe(e)).to_failure()`; method resolution picks the most
/// specific impl below (autoref specialisation), all on stable Rust.
#[doc(hidden)]
#[derive(Debug)]
pub struct ErrorProbe<E>(pub E);

#[doc(hidden)]
pub trait ProbeStdError {
    fn to_failure(&self) -> Failure;
}

impl<E: std::error::Error + 'static> ProbeStdError for &&ErrorProbe<E> {
    fn to_failure(&self) -> Failure {
        Failure::from_error(&self.0)
    }
}

#[doc(hidden)]
pub trait ProbeDynError {
    fn to_failure(&self) -> Failure;
}

impl<E: AsRef<dyn std::error::Error + Send + Sync + 'static>> ProbeDynError for &ErrorProbe<E> {
    fn to_failure(&self) -> Failure {
        Failure::from_error(self.0.as_ref())
    }
}

#[doc(hidden)]
pub trait ProbeDisplay {
    fn to_failure(&self) -> Failure;
}

impl<E: fmt::Display> ProbeDisplay for ErrorProbe<E> {
    fn to_failure(&self) -> Failure {
        Failure::new(self.0.to_string())
    }
}
