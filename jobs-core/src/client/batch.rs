//! Batches with a fan-in: `jobs.batch().add_many(members).then(fan_in)` stores the
//! members and a job that runs once, when every member ended and none failed (an
//! `on_failure` job when some failed), all in one transaction under one batch id.
//!
//! The fan-in is released by the database (see `storage::batches`): whichever server
//! records the last member's end, in the same transaction, so it runs exactly once
//! however many servers run the members. A failed member keeps the `then` job waiting
//! until it is requeued and succeeds (or is deleted).

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;

use chrono::{DateTime, Utc};

use super::new_job;
use crate::job::info::JobQuery;
use crate::storage::{AdminStore, AnyStorage, BatchMember, BatchStore, NewBatch, NewJob};
use crate::{BatchId, Error, Job, JobId, JobState, Jobs, Result};

/// How many members a read of results takes at a time.
const RESULTS_PAGE: u32 = 1000;

/// A batch being built; `.await` it to store it and get its id.
///
/// ```no_run
/// # use jobs_core::{BatchId, Job, Jobs};
/// # async fn demo<Resize: Job, Done: Job>(jobs: Jobs, images: Vec<Resize>,
/// #     done: impl FnOnce(BatchId) -> Done) -> jobs_core::Result<()> {
/// let batch = jobs.batch().label("thumbnails");
/// let id = batch.id(); // to hand to the fan-in, which reads the results by it
/// batch.add_many(images).then(done(id)).await?;
/// # Ok(()) }
/// ```
#[must_use = "a batch does nothing until it is awaited"]
pub struct Batch<'a> {
    jobs: &'a Jobs,
    id: BatchId,
    label: Option<String>,
    now: DateTime<Utc>,
    members: Result<Vec<NewJob>>,
    then: Option<Result<NewJob>>,
    on_failure: Option<Result<NewJob>>,
}

impl fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("id", &self.id)
            .field("label", &self.label)
            .field(
                "members",
                &self.members.as_ref().map(Vec::len).unwrap_or_default(),
            )
            .finish()
    }
}

/// A batch's progress: its members counted by state (pruned members are not counted)
/// and its fan-in jobs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct BatchStatus {
    /// The batch.
    pub id: BatchId,
    /// The label given at creation.
    pub label: Option<String>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
    /// How many members it was created with.
    pub total: u64,
    /// Members that succeeded.
    pub succeeded: u64,
    /// Members that failed for good.
    pub failed: u64,
    /// Members deleted.
    pub deleted: u64,
    /// Members running.
    pub running: u64,
    /// Members waiting to run (enqueued, scheduled, retrying).
    pub waiting: u64,
    /// The job that runs when every member ended and none failed.
    pub then_id: Option<JobId>,
    /// The job that runs when every member ended and some failed.
    pub on_failure_id: Option<JobId>,
}

impl BatchStatus {
    /// Members that ended: succeeded, failed or deleted.
    pub fn done(&self) -> u64 {
        self.succeeded + self.failed + self.deleted
    }

    /// Whether every member ended and none failed: the `then` job is released.
    pub fn is_succeeded(&self) -> bool {
        self.running == 0 && self.waiting == 0 && self.failed == 0
    }
}

impl<'a> Batch<'a> {
    pub(crate) fn new(jobs: &'a Jobs) -> Self {
        Self {
            jobs,
            id: BatchId::new(),
            label: None,
            now: jobs.now(),
            members: Ok(Vec::new()),
            then: None,
            on_failure: None,
        }
    }

    /// The batch's id, known before it is stored: hand it to the fan-in job, which
    /// reads the members' results with [`Jobs::batch_results`].
    pub fn id(&self) -> BatchId {
        self.id
    }

    /// A label for people (the dashboard shows it).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Adds one member.
    // A builder's `add`, the pair of `add_many`; not arithmetic.
    #[allow(clippy::should_implement_trait)]
    pub fn add<J: Job>(self, job: J) -> Self {
        self.add_many(std::iter::once(job))
    }

    /// Adds members.
    pub fn add_many<J: Job>(mut self, jobs: impl IntoIterator<Item = J>) -> Self {
        let (batch, now) = (self.id.as_job_id(), self.now);
        if let Ok(members) = &mut self.members {
            for job in jobs {
                match new_job(&job, None, now, now) {
                    Ok(mut row) => {
                        row.batch_id = Some(batch);
                        members.push(row);
                    }
                    Err(error) => {
                        self.members = Err(error);
                        break;
                    }
                }
            }
        }
        self
    }

    /// The fan-in: runs once, after every member ended, when none failed (or after
    /// the failed ones were requeued and succeeded, or deleted).
    pub fn then<K: Job>(mut self, job: K) -> Self {
        self.then = Some(self.fan_in(&job, "then"));
        self
    }

    /// Runs once when every member ended and some failed. Deleted when the batch
    /// succeeds.
    pub fn on_failure<K: Job>(mut self, job: K) -> Self {
        self.on_failure = Some(self.fan_in(&job, "on_failure"));
        self
    }

    fn fan_in<K: Job>(&self, job: &K, role: &str) -> Result<NewJob> {
        fan_in_row(self.id, self.now, job, role)
    }

    /// Its rows, for a chain that stores it as one of its steps.
    pub(crate) fn into_step(self) -> Result<BatchStep> {
        Ok(BatchStep {
            id: self.id,
            label: self.label,
            now: self.now,
            members: self.members?,
            then: self.then.transpose()?,
            on_failure: self.on_failure.transpose()?,
        })
    }

    async fn send(self) -> Result<BatchId> {
        let (jobs, id) = (self.jobs, self.id);
        let (batch, members, fan_in) = self.into_step()?.rows();
        jobs.storage()
            .batch_insert(&batch, &members, &fan_in)
            .await?;
        jobs.notify_enqueued();
        Ok(id)
    }
}

/// A batch's rows before they are stored: its members and its fan-in jobs.
pub(crate) struct BatchStep {
    pub(crate) id: BatchId,
    label: Option<String>,
    now: DateTime<Utc>,
    pub(crate) members: Vec<NewJob>,
    pub(crate) then: Option<NewJob>,
    pub(crate) on_failure: Option<NewJob>,
}

impl BatchStep {
    /// The fan-in job `job` of this batch in the role `role` (`then`, `on_failure`).
    pub(crate) fn fan_in<K: Job>(&self, job: &K, role: &str) -> Result<NewJob> {
        fan_in_row(self.id, self.now, job, role)
    }

    /// The batch row, its members and its fan-in jobs, as they are stored. Without
    /// members there is nothing to wait for: the `then` job runs at once and nothing
    /// can fail, so the `on_failure` job is left out (unless a chain made them
    /// continuations of the job before the batch: they wait for that job).
    pub(crate) fn rows(self) -> (NewBatch, Vec<NewJob>, Vec<NewJob>) {
        let mut on_failure = self.on_failure;
        let mut then = self.then;
        if self.members.is_empty() {
            on_failure = on_failure.filter(|row| row.parent_id.is_some());
            if let Some(then) = then.as_mut().filter(|row| row.parent_id.is_none()) {
                then.state = JobState::Enqueued;
            }
        }
        let batch = NewBatch {
            id: self.id.as_job_id(),
            label: self.label,
            created_at: self.now,
            then_id: then.as_ref().map(|row| row.id),
            on_failure_id: on_failure.as_ref().map(|row| row.id),
        };
        let fan_in = then.into_iter().chain(on_failure).collect();
        (batch, self.members, fan_in)
    }
}

/// A fan-in job's row: awaiting, under an id derived from the batch's.
fn fan_in_row<K: Job>(batch: BatchId, now: DateTime<Utc>, job: &K, role: &str) -> Result<NewJob> {
    let id = fan_in_id(batch, role);
    let mut row = new_job(job, Some(id), now, now)?;
    row.state = JobState::Awaiting;
    Ok(row)
}

/// The members of batch `batch` that succeeded, read a page at a time.
async fn succeeded_members(storage: &AnyStorage, batch: JobId) -> Result<Vec<BatchMember>> {
    let mut succeeded = Vec::new();
    let mut after = None;
    loop {
        let page = storage.batch_members(batch, after, RESULTS_PAGE).await?;
        let full = page.len() == RESULTS_PAGE as usize;
        after = page.last().map(|member| member.id);
        succeeded.extend(
            page.into_iter()
                .filter(|member| member.state == JobState::Succeeded),
        );
        if !full {
            return Ok(succeeded);
        }
    }
}

/// The succeeded members of the batch whose fan-in job `fan_in` is; `None` when it is
/// the fan-in of no batch.
pub(crate) async fn fan_in_members(
    storage: &AnyStorage,
    fan_in: JobId,
) -> Result<Option<Vec<BatchMember>>> {
    match storage.batch_of_fan_in(fan_in).await? {
        Some(batch) => Ok(Some(succeeded_members(storage, batch).await?)),
        None => Ok(None),
    }
}

/// What the members of `members` that are jobs `J` returned, typed as `J::Output`;
/// [`Error::UndecodableResult`] when one does not read as that.
pub(crate) fn member_results<J: Job>(members: &[BatchMember]) -> Result<Vec<(JobId, J::Output)>> {
    let name = J::DESCRIPTOR.name();
    members
        .iter()
        .filter(|member| member.state == JobState::Succeeded && member.name == name)
        .map(|member| {
            let value = member.result.as_deref().unwrap_or("null");
            serde_json::from_str(value)
                .map(|output| (member.id, output))
                .map_err(|error| Error::UndecodableResult {
                    id: member.id,
                    reason: error.to_string(),
                })
        })
        .collect()
}

/// The id of a batch's fan-in job (`role`: `then` or `on_failure`).
fn fan_in_id(batch: BatchId, role: &str) -> JobId {
    JobId::from_key(&format!("{batch}/{role}"))
}

impl<'a> IntoFuture for Batch<'a> {
    type Output = Result<BatchId>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<BatchId>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

impl Jobs {
    /// Starts a batch: members that end together into one fan-in job (see [`Batch`]).
    pub fn batch(&self) -> Batch<'_> {
        Batch::new(self)
    }

    /// A batch's progress; [`Error::BatchNotFound`] when there is no such batch.
    pub async fn batch_status(&self, id: BatchId) -> Result<BatchStatus> {
        let stored = self
            .storage()
            .batch_get(id.as_job_id())
            .await?
            .ok_or(Error::BatchNotFound(id))?;
        let mut status = BatchStatus {
            id,
            label: stored.label,
            created_at: stored.created_at,
            total: stored.total,
            succeeded: 0,
            failed: 0,
            deleted: 0,
            running: 0,
            waiting: 0,
            then_id: stored.then_id,
            on_failure_id: stored.on_failure_id,
        };
        for (state, n) in stored.by_state {
            match state {
                JobState::Succeeded => status.succeeded += n,
                JobState::Failed => status.failed += n,
                JobState::Deleted => status.deleted += n,
                JobState::Processing => status.running += n,
                JobState::Enqueued | JobState::Scheduled | JobState::Awaiting => {
                    status.waiting += n;
                }
            }
        }
        Ok(status)
    }

    /// What the succeeded members of batch `id` that are jobs `J` returned, typed as
    /// `J::Output`, by member id in id order (members of other types, members that did
    /// not succeed and pruned ones are left out). Reads the members a page at a time.
    ///
    /// Fails with [`Error::BatchNotFound`], and with [`Error::UndecodableResult`] when a
    /// stored result does not read as `J::Output` (its type changed since it ran).
    pub async fn batch_results<J: Job>(&self, id: BatchId) -> Result<Vec<(JobId, J::Output)>> {
        let batch = id.as_job_id();
        let storage = self.storage();
        if storage.batch_get(batch).await?.is_none() {
            return Err(Error::BatchNotFound(id));
        }
        member_results::<J>(&succeeded_members(storage, batch).await?)
    }

    /// Deletes a batch as one: its fan-in jobs first (so the members' end releases
    /// nothing), then every member not deleted yet, in any state (running ones are
    /// stopped). Returns how many members were deleted; [`Error::BatchNotFound`] when there is no such
    /// batch.
    pub async fn batch_delete(&self, id: BatchId) -> Result<u64> {
        let stored = self
            .storage()
            .batch_get(id.as_job_id())
            .await?
            .ok_or(Error::BatchNotFound(id))?;
        for fan_in in [stored.then_id, stored.on_failure_id].into_iter().flatten() {
            self.storage().job_delete(fan_in, self.now()).await?;
        }
        self.delete_matching(&JobQuery::default().batch(id)).await
    }

    /// Requeues a batch as one: puts its fan-in back to wait (the `then` job when it
    /// failed or was deleted, the `on_failure` job when members failed), then requeues
    /// its failed members, so the `then` job runs once they all succeed. Returns how
    /// many members were requeued; [`Error::BatchNotFound`] when there is no such batch.
    pub async fn batch_requeue(&self, id: BatchId) -> Result<u64> {
        if !self
            .storage()
            .batch_rearm(id.as_job_id(), self.now())
            .await?
        {
            return Err(Error::BatchNotFound(id));
        }
        self.notify_enqueued();
        self.requeue_matching(&JobQuery::state(JobState::Failed).batch(id))
            .await
    }
}
