//! Recurring jobs declared in code: what `#[recurring]` registers, and how every server
//! stores them at start.

use chrono::{DateTime, Utc};

use super::{JobTemplate, NewRecurring, RecurringSource, new_recurring};
use crate::storage::{RecurringStore, Registration};
use crate::{Error, Jobs, MissedTicks, Result, Schedule};

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
    release: &'static str,
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
            release: "",
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

    /// The version of the crate that declares it (`#[recurring]` gives cargo's
    /// `CARGO_PKG_VERSION`): the default release of the server's application.
    pub const fn release(mut self, release: &'static str) -> Self {
        self.release = release;
        self
    }

    /// The version of the crate that declares it; empty when none was given.
    pub fn release_setting(&self) -> &'static str {
        self.release
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

/// Registers the `declared` `#[recurring]` jobs as `application`'s at `release`:
/// upserts them and disables stored code-declared ones of the application it no longer
/// has, unless a newer release of the application registered before (then it leaves
/// them as they are). Called by every server at start.
pub(crate) async fn register_declared(
    jobs: &Jobs,
    descriptors: &[&'static RecurringDescriptor],
    application: &str,
    release: &str,
) -> Result<()> {
    let now = jobs.now();
    let mut declared = Vec::new();
    for descriptor in descriptors {
        let mut recurring = descriptor.to_new(now).map_err(|error| {
            Error::Config(format!("#[recurring(id = \"{}\")]: {error}", descriptor.id))
        })?;
        recurring.application = Some(application.to_owned());
        declared.push(recurring);
    }
    let ids: Vec<&str> = declared
        .iter()
        .map(|recurring| recurring.id.as_str())
        .collect();
    match jobs
        .storage()
        .recurring_register(application, release, &declared, now)
        .await?
    {
        Registration::Registered { disabled } => {
            tracing::info!(count = ids.len(), recurring = ?ids, application, release, "registered recurring jobs");
            if disabled > 0 {
                tracing::warn!(
                    disabled,
                    application,
                    "disabled recurring jobs of this application that are no longer declared in code"
                );
            }
        }
        Registration::Newer(newer) => tracing::info!(
            application,
            release,
            newer,
            "a newer release of this application registered its recurring jobs; leaving them as they are"
        ),
    }
    Ok(())
}
