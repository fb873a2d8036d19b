//! Recurring jobs: declared with `#[recurring]` (registered at server start) or with
//! [`Jobs::schedule_recurrently`], stored, and fired by the servers' schedulers exactly
//! once per tick however many servers share the database.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::storage::{LifecycleStore, NewJob, RecurringStore};
use crate::{Error, Job, JobId, JobState, Jobs, MissedTicks, Result, Schedule};

/// Where a recurring job was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RecurringSource {
    /// With `#[recurring]`: upserted by every server at start, disabled when no longer
    /// declared.
    Code,
    /// With [`Jobs::schedule_recurrently`] or [`Jobs::schedule_every`]: stays until deleted.
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
    /// Switched off by a user (dashboard or [`crate::Jobs::set_recurring_enabled`]).
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
    /// [`ScheduleRecurring::label`].
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
            labels: self.labels.clone(),
            fresh_id: id.is_none(),
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
    /// The first tick, used when the row is new or its schedule changed.
    pub(crate) next_run_at: DateTime<Utc>,
}

/// The schedule a `#[recurring]` declares, as written (checked at compile time).
#[derive(Debug, Clone, Copy)]
enum DeclaredSchedule {
    Cron(&'static str),
    Every(&'static str),
}

/// The static description `#[recurring]` registers through `inventory`.
#[derive(Debug, Clone, Copy)]
pub struct RecurringDescriptor {
    id: &'static str,
    schedule: DeclaredSchedule,
    zone: &'static str,
    missed: MissedTicks,
    allow_overlap: bool,
    template: fn() -> Result<JobTemplate>,
}

impl RecurringDescriptor {
    /// A job fired on the ticks of a cron expression.
    pub const fn cron(
        id: &'static str,
        expression: &'static str,
        template: fn() -> Result<JobTemplate>,
    ) -> Self {
        Self {
            id,
            schedule: DeclaredSchedule::Cron(expression),
            zone: "UTC",
            missed: MissedTicks::RunOnce,
            allow_overlap: false,
            template,
        }
    }

    /// A job fired every interval (`"15m"`).
    pub const fn every(
        id: &'static str,
        interval: &'static str,
        template: fn() -> Result<JobTemplate>,
    ) -> Self {
        Self {
            schedule: DeclaredSchedule::Every(interval),
            ..Self::cron(id, "", template)
        }
    }

    /// Reads the cron expression in `zone`.
    pub const fn zone(mut self, zone: &'static str) -> Self {
        self.zone = zone;
        self
    }

    /// Sets the missed-tick policy.
    pub const fn missed(mut self, missed: MissedTicks) -> Self {
        self.missed = missed;
        self
    }

    /// Lets a run start while the previous one is still enqueued or running.
    pub const fn allow_overlap(mut self, allow: bool) -> Self {
        self.allow_overlap = allow;
        self
    }

    /// The recurring job's id.
    pub fn id(&self) -> &'static str {
        self.id
    }

    pub(crate) fn to_new(self, now: DateTime<Utc>) -> Result<NewRecurring> {
        let schedule = match self.schedule {
            DeclaredSchedule::Cron(expression) => Schedule::cron_in(expression, self.zone)?,
            DeclaredSchedule::Every(interval) => Schedule::every(crate::parse_interval(interval)?)?,
        };
        new_recurring(
            self.id.to_owned(),
            schedule,
            (self.template)()?,
            self.missed,
            self.allow_overlap,
            RecurringSource::Code,
            now,
        )
    }
}

inventory::collect!(RecurringDescriptor);

/// Every `#[recurring]` declared in this binary.
pub fn declared_recurring() -> Vec<&'static RecurringDescriptor> {
    let mut declared: Vec<_> = inventory::iter::<RecurringDescriptor>.into_iter().collect();
    declared.sort_by_key(|descriptor| descriptor.id);
    declared
}

fn new_recurring(
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
        next_run_at,
    })
}

/// Upserts every `#[recurring]` of this binary and disables stored code-declared ones it
/// no longer has. Called by every server at start.
pub(crate) async fn register_declared(jobs: &Jobs) -> Result<()> {
    let now = jobs.now();
    let declared = declared_recurring();
    let mut ids = Vec::with_capacity(declared.len());
    for descriptor in declared {
        let recurring = descriptor.to_new(now).map_err(|error| {
            Error::Config(format!("#[recurring(id = \"{}\")]: {error}", descriptor.id))
        })?;
        jobs.storage().recurring_upsert(&recurring, now).await?;
        ids.push(recurring.id);
    }
    let disabled = jobs.storage().recurring_disable_missing(&ids, now).await?;
    tracing::info!(count = ids.len(), recurring = ?ids, "registered recurring jobs");
    if disabled > 0 {
        tracing::warn!(
            disabled,
            "disabled recurring jobs that are no longer declared in code"
        );
    }
    Ok(())
}

impl Jobs {
    /// Stores a recurring job that runs `job` on the ticks of `cron` (5-field Unix form
    /// or 6 fields with seconds; UTC unless `.zone(…)`). Storing an id again replaces its
    /// schedule and job. Await the returned builder.
    pub fn schedule_recurrently<J: Job>(
        &self,
        id: impl Into<String>,
        cron: &str,
        job: J,
    ) -> ScheduleRecurring<'_> {
        ScheduleRecurring {
            jobs: self,
            id: id.into(),
            spec: Spec::Cron(cron.to_owned()),
            zone: "UTC".to_owned(),
            template: JobTemplate::of(&job),
            missed: MissedTicks::default(),
            allow_overlap: false,
        }
    }

    /// Stores a recurring job that runs `job` every `interval`.
    pub fn schedule_every<J: Job>(
        &self,
        id: impl Into<String>,
        interval: Duration,
        job: J,
    ) -> ScheduleRecurring<'_> {
        ScheduleRecurring {
            spec: Spec::Every(interval),
            ..self.schedule_recurrently(id, "", job)
        }
    }

    /// Deletes a recurring job (its past runs stay). False when there is none.
    pub async fn delete_recurring(&self, id: &str) -> Result<bool> {
        self.storage().recurring_delete(id).await
    }

    /// Runs a recurring job now, keeping its schedule. Returns the new run's id.
    pub async fn trigger(&self, id: &str) -> Result<JobId> {
        let recurring = self.recurring_job(id).await?;
        let template = JobTemplate::stored(&recurring);
        let now = self.now();
        let run = template.job(None, id, now, now);
        let run_id = run.id;
        self.storage().jobs_insert(&[run]).await?;
        self.notify_enqueued();
        Ok(run_id)
    }

    /// The stored recurring job `id`.
    pub async fn recurring_job(&self, id: &str) -> Result<RecurringInfo> {
        self.storage()
            .recurring_get(id)
            .await?
            .ok_or_else(|| Error::RecurringNotFound(id.to_owned()))
    }

    /// Every stored recurring job, by id.
    pub async fn recurring_jobs(&self) -> Result<Vec<RecurringInfo>> {
        self.storage().recurring_list().await
    }

    /// Switches a recurring job on or off. Switched back on, it fires from its next
    /// tick after now (ticks missed while off are not run).
    pub async fn set_recurring_enabled(&self, id: &str, enabled: bool) -> Result<()> {
        let recurring = self.recurring_job(id).await?;
        let now = self.now();
        let schedule = Schedule::from_stored(&recurring.schedule, &recurring.zone)?;
        let next = schedule.next_after(now).unwrap_or(recurring.next_run_at);
        self.storage()
            .recurring_set_enabled(id, enabled, next, now)
            .await?;
        self.notify_recurring();
        Ok(())
    }
}

/// A recurring job being stored; `.await` it.
#[must_use = "nothing is stored until the builder is awaited"]
pub struct ScheduleRecurring<'a> {
    jobs: &'a Jobs,
    id: String,
    spec: Spec,
    zone: String,
    template: Result<JobTemplate>,
    missed: MissedTicks,
    allow_overlap: bool,
}

impl fmt::Debug for ScheduleRecurring<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScheduleRecurring")
            .field("id", &self.id)
            .field("schedule", &self.spec)
            .field("zone", &self.zone)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
enum Spec {
    Cron(String),
    Every(Duration),
}

impl ScheduleRecurring<'_> {
    /// Reads the cron expression in this IANA zone (`Europe/Brussels`), DST included.
    pub fn zone(mut self, zone: impl Into<String>) -> Self {
        self.zone = zone.into();
        self
    }

    /// What happens to ticks missed while no server ran (default: run once).
    pub fn missed(mut self, missed: MissedTicks) -> Self {
        self.missed = missed;
        self
    }

    /// Lets a run start while the previous one is still enqueued or running.
    pub fn allow_overlap(mut self, allow: bool) -> Self {
        self.allow_overlap = allow;
        self
    }

    /// Adds a label to every run, beside the job's own (e.g. `tenant-7`), for
    /// filtering on the dashboard.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        if let Ok(template) = &mut self.template {
            let label = label.into();
            if !template.labels.contains(&label) {
                template.labels.push(label);
            }
        }
        self
    }

    async fn store(self) -> Result<()> {
        let schedule = match &self.spec {
            Spec::Every(interval) => Schedule::every(*interval)?,
            Spec::Cron(cron) => Schedule::cron_in(cron, &self.zone)?,
        };
        let now = self.jobs.now();
        let recurring = new_recurring(
            self.id,
            schedule,
            self.template?,
            self.missed,
            self.allow_overlap,
            RecurringSource::Api,
            now,
        )?;
        self.jobs
            .storage()
            .recurring_upsert(&recurring, now)
            .await?;
        self.jobs.notify_recurring();
        Ok(())
    }
}

impl<'a> IntoFuture for ScheduleRecurring<'a> {
    type Output = Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.store())
    }
}
