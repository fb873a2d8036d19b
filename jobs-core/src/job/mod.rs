//! What a job is to the runtime: the [`Job`] trait that `#[job]` implements, the static
//! [`JobDescriptor`] it registers, and what a running job receives.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::BoxFuture;
use jobs_grammar::{BackoffPolicy, Rate};

use crate::storage::ConcurrencyKey;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub(crate) mod context;
mod failure;
pub(crate) mod id;
pub(crate) mod info;
mod invocation;
pub(crate) mod retry;
pub(crate) mod state;
pub(crate) mod unique;

pub use failure::{
    ErrorProbe, Failure, JobError, ProbeAnyhow, ProbeDisplay, ProbeDynError, ProbeFailure,
    ProbeJobError, ProbeStdError,
};
pub use invocation::{BatchResults, FromInvocation, Invocation, Parent, State, StateMap};
pub use unique::{Unique, UniqueStates};

/// A job type: the data of one run, and how to run it.
///
/// `#[job]` implements this for the struct it generates from a fn's data parameters;
/// implementing it by hand is possible but rarely needed.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a job",
    label = "not a job",
    note = "a job is the struct `#[job]` makes of an async fn, named after it in PascalCase"
)]
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// What a successful run returns, stored as the job's result (`()` for none); read it
    /// back with [`Jobs::result`](crate::Jobs::result).
    type Output: Serialize + DeserializeOwned + Send + 'static;

    /// The static description registered with `inventory`.
    const DESCRIPTOR: JobDescriptor;

    /// The name shown for this run on the dashboard, e.g. "Send reminder to 7".
    fn display_name(&self) -> String;

    /// Labels of this run, e.g. `tenant-7`, for filtering on the dashboard.
    fn labels(&self) -> Vec<String> {
        Vec::new()
    }

    /// What makes this run unique, for a job type that is
    /// ([`JobDescriptor::unique_setting`]): `None` (the default) for its arguments, or
    /// the text `#[job(unique_key = "…")]` renders from them.
    fn unique_key(&self) -> Option<String> {
        None
    }

    /// The key this run's concurrency is limited under, for a job type that limits it
    /// ([`JobDescriptor::concurrency_setting`]): the text
    /// `#[job(concurrency_key = "…")]` renders from its arguments. `None` (the default)
    /// runs it without a partitioned limit.
    fn concurrency_key(&self) -> Option<String> {
        None
    }
}

/// The queue of jobs that do not name one.
pub const DEFAULT_QUEUE: &str = "default";

/// How the server runs one attempt: decode the payload, inject what the fn asks for,
/// run it, and turn its outcome into `Ok` with the result's JSON (`None` for none) or a
/// [`Failure`].
pub type RunFn = fn(Invocation) -> BoxFuture<'static, Result<Option<String>, Failure>>;

/// The largest result a job may return, as JSON: 64 KiB. A job's result is for what
/// the next step or the caller needs (a summary, an id, a verdict), not for bulk data.
pub const MAX_RESULT_BYTES: usize = 64 * 1024;

/// The concurrency key of a job from its stored payload (`None` for a payload that does
/// not decode): what a recurring run, stored from its template rather than typed
/// arguments, is keyed by.
pub type KeyFn = fn(&str) -> Option<String>;

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
    backoff: Option<BackoffPolicy>,
    schema: Option<SchemaFn>,
    tool: bool,
    reads_parent: bool,
    reads_batch: bool,
    shape: &'static str,
    unique: Option<Unique>,
    concurrency: Option<(u32, KeyFn)>,
    key_rate: Option<(Rate, KeyFn)>,
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
            backoff: None,
            schema: None,
            tool: true,
            reads_parent: false,
            reads_batch: false,
            shape: "",
            unique: None,
            concurrency: None,
            key_rate: None,
            run,
        }
    }

    /// A fingerprint of the job's data as this build declares it (its fields' names,
    /// types and serde attributes): servers record it, so a server whose build cannot
    /// decode a payload knows whether another live build might.
    pub const fn shape(mut self, shape: &'static str) -> Self {
        self.shape = shape;
        self
    }

    /// The fingerprint of the job's data; empty when none was given.
    pub fn shape_setting(&self) -> &'static str {
        self.shape
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

    /// Waits before each retry as `policy` says (`#[job(backoff = "fixed(30s)")]`)
    /// instead of the default `3^n` seconds.
    pub const fn backoff(mut self, policy: BackoffPolicy) -> Self {
        self.backoff = Some(policy);
        self
    }

    /// Reads the result of the job before this one (its parent in a chain) before each
    /// attempt, for a `Parent<T>` parameter.
    pub const fn reads_parent(mut self) -> Self {
        self.reads_parent = true;
        self
    }

    /// Reads the results of the members of the batch whose fan-in this job is before
    /// each attempt, for a `BatchResults<J>` parameter.
    pub const fn reads_batch(mut self) -> Self {
        self.reads_batch = true;
        self
    }

    /// Makes an enqueue of the same arguments (or key) within the window return the
    /// existing job's id instead of storing another job (`#[job(unique = "1h")]`).
    pub const fn unique(mut self, unique: Unique) -> Self {
        self.unique = Some(unique);
        self
    }

    /// Runs at most `limit` jobs of one concurrency key at once, across every server
    /// (`#[job(concurrency_key = "…", concurrency = 2)]`); the key of each run is
    /// [`Job::concurrency_key`], or `key_of` its stored payload. A limit of 0 counts
    /// as 1.
    pub const fn concurrency(mut self, limit: u32, key_of: KeyFn) -> Self {
        self.concurrency = Some((if limit == 0 { 1 } else { limit }, key_of));
        self
    }

    /// How many jobs of one concurrency key may run at once, if the job is limited so.
    pub fn concurrency_setting(&self) -> Option<u32> {
        self.concurrency.map(|(limit, _)| limit)
    }

    /// Starts at most `rate.count` jobs of one concurrency key in any window of
    /// `rate.period`, across every server (`#[job(concurrency_key = "…", rate =
    /// "10/1m")]`); the key of each run is [`Job::concurrency_key`], or `key_of` its
    /// stored payload. Without [`concurrency`](Self::concurrency) as well, any number
    /// of a key's jobs may run at once.
    pub const fn rate_per_key(mut self, rate: Rate, key_of: KeyFn) -> Self {
        self.key_rate = Some((rate, key_of));
        self
    }

    /// How many jobs of one concurrency key may start per period, if the job is
    /// limited so.
    pub fn key_rate_setting(&self) -> Option<Rate> {
        self.key_rate.map(|(rate, _)| rate)
    }

    /// Whether the job's runs have a concurrency key: a limit of running jobs per key,
    /// a rate per key, or both.
    pub fn is_keyed(&self) -> bool {
        self.concurrency.is_some() || self.key_rate.is_some()
    }

    /// What a run of the job with `key` is limited by: `None` for a job without a
    /// concurrency key.
    pub(crate) fn key_limits(&self, key: String) -> Option<ConcurrencyKey> {
        self.is_keyed().then(|| ConcurrencyKey {
            key,
            limit: self.concurrency_setting(),
            rate: self.key_rate_setting(),
        })
    }

    /// What the run whose stored payload is `payload` is limited by: `None` for a job
    /// without a concurrency key or a payload that does not decode.
    pub(crate) fn key_limits_of(&self, payload: &str) -> Option<ConcurrencyKey> {
        let key_of = self
            .concurrency
            .map(|(_, key_of)| key_of)
            .or(self.key_rate.map(|(_, key_of)| key_of))?;
        self.key_limits(key_of(payload)?)
    }

    /// How the job is unique, if it is.
    pub fn unique_setting(&self) -> Option<Unique> {
        self.unique
    }

    /// Whether an attempt needs the parent's result.
    pub fn reads_parent_setting(&self) -> bool {
        self.reads_parent
    }

    /// Whether an attempt needs the results of its batch's members.
    pub fn reads_batch_setting(&self) -> bool {
        self.reads_batch
    }

    /// The job's own backoff policy, if it set one.
    pub fn backoff_setting(&self) -> Option<BackoffPolicy> {
        self.backoff
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

    pub(crate) fn run(
        &self,
        invocation: Invocation,
    ) -> BoxFuture<'static, Result<Option<String>, Failure>> {
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
