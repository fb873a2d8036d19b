//! Recurring jobs: declared with `#[recurring]` (registered at server start) or added
//! through [`Jobs::recurring`](crate::Jobs::recurring), stored, and fired by the servers'
//! tickers exactly once per tick however many servers share the database.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::storage::NewJob;
use crate::{Error, Job, JobId, JobState, MissedTicks, Result, Schedule};

mod client;
mod descriptor;
pub(crate) mod schedule;
#[cfg(test)]
mod schedule_properties;

pub use client::{AddRecurring, Recurring};
pub(crate) use descriptor::register_declared;
pub use descriptor::{RecurringDescriptor, declared_recurring};

/// Where a recurring job was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RecurringSource {
    /// With `#[recurring]`: upserted by every server at start, disabled when no longer
    /// declared.
    Code,
    /// With [`Recurring::cron`] or [`Recurring::every`]: stays until deleted.
    Api,
}

impl RecurringSource {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RecurringSource::Code => "code",
            RecurringSource::Api => "api",
        }
    }

    pub(crate) fn from_stored(text: &str) -> Self {
        if text == "code" {
            RecurringSource::Code
        } else {
            RecurringSource::Api
        }
    }
}

/// Why a recurring job does not fire.
pub(crate) mod disabled {
    /// Switched off by a user (dashboard or [`Recurring::set_enabled`]).
    pub(crate) const BY_USER: &str = "disabled by a user";
    /// Declared with `#[recurring]` once, but not by the binary of the last server started.
    pub(crate) const REMOVED: &str = "no longer declared in code";
    /// The schedule has no future tick.
    pub(crate) const FINISHED: &str = "the schedule has no further ticks";
}

/// A stored recurring job.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RecurringInfo {
    /// Its id, e.g. `morning-email-summary`.
    pub id: String,
    /// The cron expression, or `@every <n>ms` for an interval.
    pub schedule: String,
    /// The zone the cron expression is read in.
    pub zone: String,
    /// The registered name of the job it runs.
    pub job_name: String,
    /// The display name of its runs.
    pub display_name: String,
    /// The arguments of its runs.
    pub payload: serde_json::Value,
    /// The labels of its runs: the job's own and any added with
    /// [`AddRecurring::label`].
    pub labels: Vec<String>,
    /// Retries of each run (`None`: the server's default).
    pub max_retries: Option<u32>,
    /// What happens to ticks missed during downtime.
    pub missed: MissedTicks,
    /// Whether a run may start while the previous one is still enqueued or running.
    pub allow_overlap: bool,
    /// Whether it fires.
    pub enabled: bool,
    /// Why not, when it does not.
    pub disabled_reason: Option<String>,
    /// Where it was declared.
    pub source: RecurringSource,
    /// Its next tick.
    pub next_run_at: DateTime<Utc>,
    /// When it last created a run.
    pub last_run_at: Option<DateTime<Utc>>,
    /// The job of its last run.
    pub last_job_id: Option<JobId>,
    /// When it was first stored.
    pub created_at: DateTime<Utc>,
    /// When its row last changed.
    pub updated_at: DateTime<Utc>,
    /// Why the last server that tried could not fire it (a zone or cron its build
    /// cannot read, a failed write); cleared when it fires. It is retried at the poll
    /// interval, and its ticks are left as they are for a server that reads it.
    pub error: Option<String>,
    /// The application that declared it in code (`#[recurring]`, the server's
    /// `application` setting); `None` for one added through the API, or stored by an
    /// older release.
    pub application: Option<String>,
}

/// The job a recurring schedule creates on each tick: name, display name, payload.
#[derive(Debug, Clone)]
pub struct JobTemplate {
    pub(crate) name: String,
    pub(crate) display_name: String,
    pub(crate) payload: String,
    pub(crate) max_retries: Option<u32>,
    pub(crate) labels: Vec<String>,
}

impl JobTemplate {
    /// The template of `job`.
    pub fn of<J: Job>(job: &J) -> Result<Self> {
        Ok(Self {
            name: J::DESCRIPTOR.name().to_owned(),
            display_name: job.display_name(),
            payload: serde_json::to_string(job)?,
            max_retries: J::DESCRIPTOR.retries_setting(),
            labels: job.labels(),
        })
    }

    /// The template a stored recurring job creates its runs from.
    pub(crate) fn stored(recurring: &RecurringInfo) -> Self {
        Self {
            name: recurring.job_name.clone(),
            display_name: recurring.display_name.clone(),
            payload: recurring.payload.to_string(),
            max_retries: recurring.max_retries,
            labels: recurring.labels.clone(),
        }
    }

    pub(crate) fn labels_json(&self) -> String {
        serde_json::to_string(&self.labels).unwrap_or_else(|_| "[]".to_owned())
    }

    /// The run for `tick`, with an id derived from the recurring id and the tick, so
    /// two servers firing the same tick create one job.
    pub(crate) fn run(
        &self,
        recurring_id: &str,
        tick: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> NewJob {
        let key = format!("recurring:{recurring_id}:{}", tick.to_rfc3339());
        self.job(
            Some(JobId::from_key(&key)),
            recurring_id,
            tick.min(now),
            now,
        )
    }

    /// A run under `id`, or under a new id when `None`.
    pub(crate) fn job(
        &self,
        id: Option<JobId>,
        recurring_id: &str,
        run_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> NewJob {
        // Queue and priority come from this binary's registration of the job, so a
        // changed `#[job(queue = …)]` applies to the next run.
        let descriptor = crate::job::registry().get(self.name.as_str());
        NewJob {
            id: id.unwrap_or_default(),
            name: self.name.clone(),
            display_name: self.display_name.clone(),
            payload: self.payload.clone(),
            state: JobState::Enqueued,
            queue: descriptor
                .map_or(crate::DEFAULT_QUEUE, |descriptor| descriptor.queue_name())
                .to_owned(),
            priority: descriptor.map_or(0, |descriptor| descriptor.priority_setting()),
            run_at,
            max_retries: self.max_retries,
            created_at: now,
            recurring_id: Some(recurring_id.to_owned()),
            parent_id: None,
            on_failure: false,
            batch_id: None,
            labels: self.labels.clone(),
            // A scheduled run starts its own trace.
            trace_context: None,
            fresh_id: id.is_none(),
            unique: None,
            // Keyed from the payload: a run is stored from its template, not its typed
            // arguments.
            concurrency: descriptor.and_then(|descriptor| descriptor.key_limits_of(&self.payload)),
        }
    }
}

/// What to store for a recurring job.
#[derive(Debug, Clone)]
pub(crate) struct NewRecurring {
    pub(crate) id: String,
    pub(crate) schedule: Schedule,
    pub(crate) template: JobTemplate,
    pub(crate) missed: MissedTicks,
    pub(crate) allow_overlap: bool,
    pub(crate) source: RecurringSource,
    /// The application that declared it in code; `None` through the API.
    pub(crate) application: Option<String>,
    /// The first tick, used when the row is new or its schedule changed.
    pub(crate) next_run_at: DateTime<Utc>,
}

pub(crate) fn new_recurring(
    id: String,
    schedule: Schedule,
    template: JobTemplate,
    missed: MissedTicks,
    allow_overlap: bool,
    source: RecurringSource,
    now: DateTime<Utc>,
) -> Result<NewRecurring> {
    let next_run_at = schedule.next_after(now).ok_or_else(|| {
        Error::Config(format!(
            "recurring job `{id}`: the schedule has no future tick"
        ))
    })?;
    Ok(NewRecurring {
        id,
        schedule,
        template,
        missed,
        allow_overlap,
        source,
        application: None,
        next_run_at,
    })
}
