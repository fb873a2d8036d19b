//! Recurring jobs through the client: store, read, trigger, switch off and delete them.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use super::{JobTemplate, RecurringInfo, RecurringSource, new_recurring};
use crate::storage::RecurringStore;
use crate::{Error, Job, JobId, Jobs, MissedTicks, Result, Schedule};

impl Jobs {
    /// The recurring jobs of this store: add them with [`cron`](Recurring::cron) or
    /// [`every`](Recurring::every), then read, trigger, switch off or delete them by id.
    ///
    /// ```no_run
    /// # async fn demo<J: jobs_core::Job>(jobs: jobs_core::Jobs, report: J) -> jobs_core::Result<()> {
    /// jobs.recurring().cron("weekly-report", "0 9 * * MON", report).await?;
    /// jobs.recurring().trigger("weekly-report").await?;
    /// jobs.recurring().delete("weekly-report").await?;
    /// # Ok(()) }
    /// ```
    pub fn recurring(&self) -> Recurring<'_> {
        Recurring { jobs: self }
    }
}

/// The recurring jobs of a [`Jobs`] store, from [`Jobs::recurring`]: the one-off API's
/// `get`, `list`, `delete`, for jobs that run on a schedule.
#[derive(Debug, Clone, Copy)]
pub struct Recurring<'a> {
    jobs: &'a Jobs,
}

impl<'a> Recurring<'a> {
    /// Stores a recurring job that runs `job` on the ticks of `cron` (5-field Unix form
    /// or 6 fields with seconds; UTC unless `.zone(…)`). Storing an id again replaces its
    /// schedule and job. Await the returned builder.
    pub fn cron<J: Job>(self, id: impl Into<String>, cron: &str, job: J) -> AddRecurring<'a> {
        AddRecurring {
            jobs: self.jobs,
            id: id.into(),
            spec: Spec::Cron(cron.to_owned()),
            zone: "UTC".to_owned(),
            template: JobTemplate::of(&job),
            missed: MissedTicks::default(),
            allow_overlap: false,
        }
    }

    /// Stores a recurring job that runs `job` every `interval`.
    pub fn every<J: Job>(
        self,
        id: impl Into<String>,
        interval: Duration,
        job: J,
    ) -> AddRecurring<'a> {
        AddRecurring {
            spec: Spec::Every(interval),
            ..self.cron(id, "", job)
        }
    }

    /// The stored recurring job `id`.
    pub async fn get(self, id: &str) -> Result<RecurringInfo> {
        self.jobs
            .storage()
            .recurring_get(id)
            .await?
            .ok_or_else(|| Error::RecurringNotFound(id.to_owned()))
    }

    /// Every stored recurring job, by id.
    pub async fn list(self) -> Result<Vec<RecurringInfo>> {
        self.jobs.storage().recurring_list().await
    }

    /// Deletes a recurring job (its past runs stay). False when there is none.
    pub async fn delete(self, id: &str) -> Result<bool> {
        self.jobs.storage().recurring_delete(id).await
    }

    /// Runs a recurring job now, keeping its schedule. Returns the new run's id.
    pub async fn trigger(self, id: &str) -> Result<JobId> {
        let recurring = self.get(id).await?;
        let template = JobTemplate::stored(&recurring);
        let now = self.jobs.now();
        let run = template.job(None, id, now, now);
        let run_id = run.id;
        self.jobs.storage().recurring_trigger(&run).await?;
        self.jobs.notify_enqueued();
        Ok(run_id)
    }

    /// Switches a recurring job on or off. Switched back on, it fires from its next
    /// tick after now (ticks missed while off are not run).
    pub async fn set_enabled(self, id: &str, enabled: bool) -> Result<()> {
        let recurring = self.get(id).await?;
        let now = self.jobs.now();
        let schedule = Schedule::from_stored(&recurring.schedule, &recurring.zone)?;
        let next = schedule.next_after(now).unwrap_or(recurring.next_run_at);
        self.jobs
            .storage()
            .recurring_set_enabled(id, enabled, next, now)
            .await?;
        self.jobs.notify_recurring();
        Ok(())
    }
}

/// A recurring job being stored; `.await` it.
#[must_use = "nothing is stored until the builder is awaited"]
pub struct AddRecurring<'a> {
    jobs: &'a Jobs,
    id: String,
    spec: Spec,
    zone: String,
    template: Result<JobTemplate>,
    missed: MissedTicks,
    allow_overlap: bool,
}

impl fmt::Debug for AddRecurring<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddRecurring")
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

impl AddRecurring<'_> {
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

impl<'a> IntoFuture for AddRecurring<'a> {
    type Output = Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.store())
    }
}
