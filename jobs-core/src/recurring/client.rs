//! Recurring jobs through the client: store, read, trigger, switch off and delete them.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use super::{JobTemplate, RecurringInfo, RecurringSource, new_recurring};
use crate::storage::Storage;
use crate::{Error, Job, JobId, Jobs, MissedTicks, Result, Schedule};

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
