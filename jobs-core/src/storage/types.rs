//! The values that cross the storage traits: what callers ask to store and what claims
//! and maintenance read back. The read models shown to users live in `crate::record`.

use chrono::{DateTime, Utc};

use crate::job::info::ServerQueues;
use crate::{Failure, JobId, JobState, UniqueStates};

/// A job to insert.
#[derive(Debug, Clone)]
pub(crate) struct NewJob {
    pub(crate) id: JobId,
    pub(crate) name: String,
    pub(crate) display_name: String,
    pub(crate) payload: String,
    /// `Enqueued` or `Scheduled`.
    pub(crate) state: JobState,
    pub(crate) queue: String,
    pub(crate) priority: i32,
    pub(crate) run_at: DateTime<Utc>,
    pub(crate) max_retries: Option<u32>,
    pub(crate) created_at: DateTime<Utc>,
    /// The recurring job this is a run of.
    pub(crate) recurring_id: Option<String>,
    /// For a continuation (state `Awaiting`): the job it waits for.
    pub(crate) parent_id: Option<JobId>,
    /// A continuation that runs when its parent fails for good, not when it succeeds.
    pub(crate) on_failure: bool,
    /// The batch this job is a member of (see `crate::client::batch`).
    pub(crate) batch_id: Option<JobId>,
    pub(crate) labels: Vec<String>,
    /// The W3C trace context of the enqueueing span (see `crate::telemetry`); `None`
    /// without the `opentelemetry` feature or outside a traced span.
    pub(crate) trace_context: Option<String>,
    /// The id was made by [`JobId::new`] for this insert, not given or derived from a
    /// key, so it cannot be stored already: an insert of only such jobs skips the
    /// check for an existing id (on PostgreSQL a speculative insert per row).
    pub(crate) fresh_id: bool,
    /// The job's unique key, when an earlier job with it may make this one a duplicate.
    pub(crate) unique: Option<UniqueClaim>,
    /// The job's concurrency key and how many jobs of it may run at once.
    pub(crate) concurrency: Option<ConcurrencyKey>,
}

/// A partitioned limit (`#[job(concurrency_key = "…", concurrency = n, rate = "10/1m")]`):
/// no more than `limit` jobs of `key` are `Processing` at once, and no more than
/// `rate.count` of them start in any window of `rate.period`, across every server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConcurrencyKey {
    /// The key as rendered from the job's arguments.
    pub(crate) key: String,
    /// At least 1; `None` for a key with a rate only, whose jobs may all run at once.
    pub(crate) limit: Option<u32>,
    /// The key's rate, if it has one.
    pub(crate) rate: Option<crate::Rate>,
}

/// The unique key a job is inserted under (see `crate::job::unique`).
#[derive(Debug, Clone)]
pub(crate) struct UniqueClaim {
    /// The job's name and key (its arguments, or its rendered `unique_key`), hashed.
    pub(crate) key: uuid::Uuid,
    /// The new job would hold the key until then: its creation plus the window.
    pub(crate) until: DateTime<Utc>,
    /// The states in which the key's current holder makes this job a duplicate.
    pub(crate) states: UniqueStates,
    /// A duplicate that has not started yet takes this job's time and arguments.
    pub(crate) replace: bool,
}

/// What an insert did with one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admitted {
    /// Stored under its id (or its id was stored already, for a given id).
    Stored,
    /// Not stored: the job with this id holds its unique key.
    Duplicate(JobId),
    /// Not stored: the job with this id holds its unique key, had not started, and now
    /// runs at this job's time with its arguments.
    Replaced(JobId),
    /// Not stored: a continuation of a job of this insert that was not stored.
    Skipped,
}

impl NewJob {
    /// The labels as stored: a JSON array.
    pub(crate) fn labels_json(&self) -> String {
        serde_json::to_string(&self.labels).expect("a list of strings serializes")
    }
}

/// What a quota-checked insert of a tool call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Stored.
    Stored,
    /// Nothing stored: the caller has `current` already, at or past the limit.
    Refused { current: u64 },
}

/// Which queues a claim takes jobs from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum QueueSelector<'a> {
    /// Every queue.
    All,
    /// Only this one (a queue with a concurrency limit).
    Only(&'a str),
    /// Every queue but these (the limited ones, claimed separately).
    AllExcept(&'a [String]),
    /// Only these (the queues a server serves, less the limited ones).
    Among(&'a [String]),
    /// Only this queue, and no more of it than leaves `global` jobs of it `Processing`
    /// across every server: the claim counts them and takes at most the rest, while
    /// the claims of that queue by other servers wait for it to commit.
    Capped { queue: &'a str, global: u32 },
}

/// One claim of a job: its id and the token that claim set. A write fenced on it
/// applies only while the job is still under that claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Fence {
    pub(crate) id: JobId,
    pub(crate) token: i64,
}

/// Rescues of one job after which the next one fails it for good: a job whose server
/// died during each of its runs probably kills its process.
pub(crate) const MAX_RESCUES: u32 = 10;

/// A line a job logged.
#[derive(Debug, Clone)]
pub(crate) struct LogLine {
    pub(crate) job_id: JobId,
    /// The claim of the attempt that logged it: the line is kept only while it holds.
    pub(crate) token: i64,
    pub(crate) at: DateTime<Utc>,
    pub(crate) attempt: u32,
    pub(crate) level: crate::job::info::LogLevel,
    pub(crate) message: String,
}

/// A job's latest progress.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProgressUpdate {
    pub(crate) job_id: JobId,
    /// The claim of the attempt that reported it: applied only while it holds.
    pub(crate) token: i64,
    pub(crate) done: u64,
    pub(crate) total: u64,
}

/// What a server asks for when it claims.
#[derive(Debug, Clone)]
pub(crate) struct ClaimRequest<'a> {
    pub(crate) owner: &'a str,
    pub(crate) limit: u32,
    pub(crate) now: DateTime<Utc>,
    /// The lease runs for `lease_until - now`: on SQLite until `lease_until`, on
    /// PostgreSQL from the database's clock plus `offset`.
    pub(crate) lease_until: DateTime<Utc>,
    /// What the server's clock adds to the database's (see `Clock::lease_offset`).
    pub(crate) offset: chrono::Duration,
    pub(crate) queues: QueueSelector<'a>,
    /// Only jobs of these names (the ones the server runs): a job whose name no server
    /// registers waits for one that does. `None` takes any name (the storage tests).
    pub(crate) names: Option<&'a [String]>,
    /// The first this many jobs of the claim, in claim order, start at once; the others
    /// are claimed ahead (stored with `ahead` set).
    pub(crate) start_now: u32,
    /// Some jobs the server runs carry a concurrency key: a job of a key is claimed
    /// only while fewer than its limit of that key are `Processing`, and no more than
    /// `start_now` of them are claimed (so they are rarely claimed ahead). False keeps
    /// the claim that reads no key (a keyed job is then claimed as any other).
    pub(crate) keyed: bool,
    /// A rate limit on the claim's jobs (the claim is of one queue): no more of them
    /// than leaves the scope's starts after `now - window` at `count` or fewer.
    pub(crate) rate: Option<RateCap<'a>>,
}

/// A rate limit as a claim applies it: at most `count` starts recorded under `scope`
/// within any `window`. The claim counts the starts after `now - window`, takes at most
/// the rest, records its own starts at `now` and deletes the scope's starts that left
/// the window, all in one step that the claims of the scope take in turns (on
/// PostgreSQL an advisory lock on the scope, on SQLite the write lock). On PostgreSQL
/// `now` is the database's clock plus the request's `offset`, as for leases.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RateCap<'a> {
    pub(crate) scope: &'a str,
    pub(crate) count: u32,
    pub(crate) window: chrono::Duration,
}

/// The starts of one rate-limited scope within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct RateWindow {
    /// How many started after the window's start.
    pub(crate) started: u64,
    /// When the earliest of those claims was made.
    pub(crate) oldest: Option<DateTime<Utc>>,
}

/// A job a server claimed: moved to `Processing`, owned by it, attempt counted.
#[derive(Debug, Clone)]
pub(crate) struct ClaimedJob {
    pub(crate) id: JobId,
    pub(crate) name: String,
    pub(crate) payload: String,
    pub(crate) attempt: u32,
    pub(crate) max_retries: Option<u32>,
    pub(crate) queue: String,
    /// When it became due: claim time minus this is how long it waited.
    pub(crate) run_at: DateTime<Utc>,
    /// The token of this claim, which fences every write of the attempt.
    pub(crate) token: i64,
    /// Claimed ahead: it waits for a free worker and has not started.
    pub(crate) ahead: bool,
    /// The trace context stored at enqueue, which the run span continues.
    pub(crate) trace_context: Option<String>,
}

impl ClaimedJob {
    pub(crate) fn fence(&self) -> Fence {
        Fence {
            id: self.id,
            token: self.token,
        }
    }
}

/// How an attempt ended, reported by the server that ran it (or rescued it).
#[derive(Debug, Clone)]
pub(crate) struct Completion {
    pub(crate) id: JobId,
    /// The fence, with `token`: only the owner of this claim may finish it.
    pub(crate) owner: String,
    /// The claim's token.
    pub(crate) token: i64,
    /// The attempt, for the history row.
    pub(crate) attempt: u32,
    pub(crate) outcome: Outcome,
    /// What a succeeded attempt returned, as JSON; `None` for nothing (or any other
    /// outcome).
    pub(crate) result: Option<String>,
    pub(crate) at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Succeeded,
    /// Failed; run again at `at`.
    Retry {
        at: DateTime<Utc>,
        failure: Failure,
    },
    /// Failed for good.
    Failed {
        failure: Failure,
    },
    /// Rescued: its server stopped renewing the lease while the attempt ran. Runs again
    /// at `at`, the attempt counted, the rescue counted (`rescues + 1`); the failure is
    /// recorded as the attempt's error.
    Orphaned {
        at: DateTime<Utc>,
        failure: Failure,
    },
    /// Put back uncharged: the attempt never started (it was claimed ahead). `Enqueued`
    /// at `at`, `attempt - 1`, `last_error` kept; `note` is the history row's message.
    NotStarted {
        at: DateTime<Utc>,
        note: String,
    },
    /// The job sleeps (`ctx.sleep`) or waits for an event (`ctx.wait_for_event`, with
    /// `wait`): `Scheduled` at `until`, uncharged (`attempt - 1`), `last_error` kept;
    /// `note` is the history row's message.
    Sleeping {
        until: DateTime<Utc>,
        note: String,
        wait: Option<EventWait>,
    },
}

impl Outcome {
    /// The state the job moves to, when it runs again, and the failure if any.
    pub(crate) fn ending(&self) -> (JobState, Option<DateTime<Utc>>, Option<&Failure>) {
        match self {
            Outcome::Succeeded => (JobState::Succeeded, None, None),
            Outcome::Retry { at, failure } | Outcome::Orphaned { at, failure } => {
                (JobState::Scheduled, Some(*at), Some(failure))
            }
            Outcome::Failed { failure } => (JobState::Failed, None, Some(failure)),
            Outcome::NotStarted { at, .. } => (JobState::Enqueued, Some(*at), None),
            Outcome::Sleeping { until, .. } => (JobState::Scheduled, Some(*until), None),
        }
    }

    /// Whether the attempt is given back (`attempt - 1`).
    pub(crate) fn uncharged(&self) -> bool {
        matches!(self, Outcome::NotStarted { .. } | Outcome::Sleeping { .. })
    }

    /// Whether it counts as a rescue (`rescues + 1`).
    pub(crate) fn rescued(&self) -> bool {
        matches!(self, Outcome::Orphaned { .. })
    }

    /// The event the job waits for, when it waits for one.
    pub(crate) fn wait(&self) -> Option<&EventWait> {
        match self {
            Outcome::Sleeping { wait, .. } => wait.as_ref(),
            _ => None,
        }
    }

    /// The message of a history row that records no failure.
    pub(crate) fn note(&self) -> Option<&str> {
        match self {
            Outcome::NotStarted { note, .. } | Outcome::Sleeping { note, .. } => Some(note),
            _ => None,
        }
    }
}

/// A wait of a job for the event `name` with `key` (`ctx.wait_for_event`), and the
/// names of the two steps that record it: its deadline, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct EventWait {
    pub(crate) name: String,
    pub(crate) key: String,
}

impl EventWait {
    /// The step that records how the wait ended, as JSON: `{"event": payload}` or
    /// `"timeout"`. Name and key are written as a JSON array, so that no two waits share
    /// a step whatever their text.
    pub(crate) fn outcome_step(&self) -> String {
        format!("event:{}", self.pair())
    }

    /// The step that records the wait's deadline, stored the first time it is reached.
    pub(crate) fn deadline_step(&self) -> String {
        format!("event-deadline:{}", self.pair())
    }

    fn pair(&self) -> String {
        serde_json::to_string(&(&self.name, &self.key)).expect("two strings serialize")
    }
}

/// Where a job's wait for an event stands, as [`crate::storage::SignalStore::signal_wait`]
/// read (and settled) it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WaitState {
    /// The wait ended: its outcome step, as JSON (`{"event": payload}` or `"timeout"`).
    Ended(String),
    /// Nothing arrived yet and the deadline is ahead: the job suspends until then.
    Pending { until: DateTime<Utc> },
}

/// The outcome step of a wait that timed out.
pub(crate) const WAIT_TIMED_OUT: &str = "\"timeout\"";

/// What came of a requeue of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Requeue {
    /// It moved to `Enqueued`.
    Requeued,
    /// There is no such job.
    NotFound,
    /// Its state cannot be requeued (`Processing`, `Awaiting`).
    NotRequeueable(JobState),
    /// It was deleted while running and its attempt has not stopped yet: `server`
    /// still holds its lease.
    StillRunning { server: String },
}

/// A `Processing` job whose lease ran out: its server stopped heartbeating.
#[derive(Debug, Clone)]
pub(crate) struct ExpiredJob {
    pub(crate) id: JobId,
    pub(crate) owner: String,
    pub(crate) token: i64,
    pub(crate) attempt: u32,
    /// Claimed ahead and not started, as its server last said.
    pub(crate) ahead: bool,
    /// Rescues of this job since it was created or last requeued.
    pub(crate) rescues: u32,
}

/// A server's row in the servers table.
#[derive(Debug, Clone)]
pub(crate) struct ServerRow {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) host: String,
    pub(crate) pid: u32,
    pub(crate) workers: u32,
    pub(crate) running: u32,
    pub(crate) started_at: DateTime<Utc>,
    /// The job names it runs (those its binary registers, or `only_jobs`), sorted.
    pub(crate) jobs: Vec<String>,
    /// The fingerprint of each job's data as its build declares it, by name.
    pub(crate) shapes: std::collections::BTreeMap<String, String>,
    /// The queues it claims from and their limits.
    pub(crate) queues: ServerQueues,
}

/// One queue's unfinished jobs by state, as [`AdminStore::jobs_count_by_queue`] counts
/// them.
///
/// [`AdminStore::jobs_count_by_queue`]: super::AdminStore::jobs_count_by_queue
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct QueueCounts {
    pub(crate) queue: String,
    /// `Enqueued`, or `Scheduled` with `run_at <= now`.
    pub(crate) waiting: u64,
    /// `Scheduled` with `run_at > now`.
    pub(crate) scheduled: u64,
    /// `Processing`.
    pub(crate) running: u64,
    /// `Failed`.
    pub(crate) failed: u64,
}

/// What [`AdminStore::jobs_waiting`] groups the due jobs by.
///
/// [`AdminStore::jobs_waiting`]: super::AdminStore::jobs_waiting
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitingBy {
    Queue,
    /// The job's registered name.
    Name,
}

impl WaitingBy {
    pub(crate) fn column(self) -> &'static str {
        match self {
            WaitingBy::Queue => "queue",
            WaitingBy::Name => "name",
        }
    }
}

/// The due, unclaimed jobs of one queue or name, as [`AdminStore::jobs_waiting`]
/// counts them.
///
/// [`AdminStore::jobs_waiting`]: super::AdminStore::jobs_waiting
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Waiting {
    /// The queue or the name.
    pub(crate) key: String,
    pub(crate) waiting: u64,
    /// The earliest `run_at` among them.
    pub(crate) oldest_due: DateTime<Utc>,
}

/// One ticker's attempt to fire the due tick(s) of a recurring job.
#[derive(Debug, Clone)]
pub(crate) struct FireRequest<'a> {
    pub(crate) id: &'a str,
    /// The compare-and-set: fire only if `next_run_at` still has this value.
    pub(crate) expected_next: DateTime<Utc>,
    /// The new `next_run_at`; `None` disables a schedule without future ticks.
    pub(crate) next: Option<DateTime<Utc>>,
    pub(crate) runs: &'a [NewJob],
    pub(crate) allow_overlap: bool,
    /// Without overlap, a tick that finds a run active waits for it (nothing changes)
    /// instead of being skipped: catch-up runs, made one at a time.
    pub(crate) wait_for_active: bool,
    pub(crate) now: DateTime<Utc>,
}

/// What came of a [`FireRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fired {
    /// The runs were created (none, if the plan had none).
    Created,
    /// The previous run is still active; the tick advanced without a run.
    SkippedOverlap,
    /// The previous run is still active and the tick waits for it (`wait_for_active`):
    /// nothing changed.
    Waiting,
    /// Another ticker fired this tick first; nothing changed.
    Lost,
}
