//! The storage trait of recurring jobs (see the module above for what all the traits
//! share).

use std::future::Future;

use chrono::{DateTime, Utc};

use super::{FireRequest, Fired, NewJob, Registration};
use crate::Result;
use crate::recurring::{NewRecurring, RecurringInfo};

/// Recurring jobs and the firing of their ticks.
pub(crate) trait RecurringStore: Send + Sync + 'static {
    /// Inserts a recurring job (enabled, `created_at = updated_at = now`), or updates the
    /// stored one: schedule, zone, template, labels, missed-tick policy, overlap and
    /// source are replaced and `updated_at = now`. `next_run_at` is replaced only when
    /// the schedule or the zone changed; an unchanged one keeps the stored one, so
    /// ticks missed while no server ran are still seen. A job disabled because it had
    /// left the code is enabled again (its reason cleared); one disabled for another
    /// reason (by a user, or finished) stays as it is. `created_at`, `last_run_at` and
    /// `last_job_id` are kept.
    fn recurring_upsert(
        &self,
        recurring: &NewRecurring,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Registers the recurring jobs `application` declares in code at `release`, in one
    /// transaction that registrations of the same application take in turn: unless a
    /// newer release of it registered before (`jobs_application.release`, compared by
    /// [`release_order`]), upserts each of `declared` as
    /// [`RecurringStore::recurring_upsert`] does, disables the enabled ones it declared
    /// in code before (or that an older release stored without an application) that
    /// are not among `declared`, with the reason that they left the code, and records
    /// `release`. Other applications' rows are not touched. A
    /// newer release's registration is left as it is: → [`Registration::Newer`].
    fn recurring_register(
        &self,
        application: &str,
        release: &str,
        declared: &[NewRecurring],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Registration>> + Send;

    /// One recurring job, or `None`.
    fn recurring_get(&self, id: &str)
    -> impl Future<Output = Result<Option<RecurringInfo>>> + Send;

    /// Every recurring job, by id.
    fn recurring_list(&self) -> impl Future<Output = Result<Vec<RecurringInfo>>> + Send;

    /// Deletes a recurring job (its runs stay); returns whether there was one.
    fn recurring_delete(&self, id: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Switches a recurring job on, from `next_run_at` (its reason cleared), or off, for
    /// the reason that a user did (its `next_run_at` kept); `updated_at = now` either
    /// way. Returns whether there is such a job.
    fn recurring_set_enabled(
        &self,
        id: &str,
        enabled: bool,
        next_run_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Up to `limit` enabled recurring jobs whose `next_run_at` is at or before `now`,
    /// earliest first.
    fn recurring_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<RecurringInfo>>> + Send;

    /// The earliest `next_run_at` of the enabled recurring jobs, or `None`.
    fn recurring_next_run_at(&self) -> impl Future<Output = Result<Option<DateTime<Utc>>>> + Send;

    /// Inserts `run`, a run of the recurring job its `recurring_id` names started by
    /// hand, as [`LifecycleStore::jobs_insert`] does, with that recurring job's caller
    /// (see [`ToolStore`]), in one transaction.
    fn recurring_trigger(&self, run: &NewJob) -> impl Future<Output = Result<()>> + Send;

    /// Records why a server could not fire the recurring job `id` (`None` clears it);
    /// nothing else changes. Returns whether there is such a job.
    fn recurring_set_error(
        &self,
        id: &str,
        error: Option<&str>,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Fires a tick, in one transaction.
    ///
    /// The compare-and-set: only if the job is enabled and its `next_run_at` equals
    /// `expected_next`, `next_run_at` becomes `next` (or, when `next` is `None`, the job
    /// is disabled as finished, `next_run_at` kept), `error` is cleared and
    /// `updated_at = now`. Otherwise
    /// nothing changes and the answer is [`Fired::Lost`]: another server fired it.
    ///
    /// Having won, with no `runs` the answer is [`Fired::Created`]. Unless
    /// `allow_overlap`, while a job of this recurring id is `Enqueued`, `Scheduled`,
    /// `Processing` or `Awaiting`, no run is inserted and the answer is
    /// [`Fired::SkippedOverlap`] (the tick still advanced), or, with `wait_for_active`,
    /// nothing changes at all and the answer is [`Fired::Waiting`]. Otherwise the runs are
    /// inserted as by [`LifecycleStore::jobs_insert`] (a stored id is skipped) with the
    /// job's caller when it has one (see [`ToolStore`]), the job's `last_run_at` becomes
    /// `now` and `last_job_id` the last run's id, and the answer is [`Fired::Created`].
    fn recurring_fire(
        &self,
        request: FireRequest<'_>,
    ) -> impl Future<Output = Result<Fired>> + Send;
}
