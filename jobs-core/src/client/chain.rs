//! Continuations: `jobs.enqueue(a).then(b).then(c)` stores `b` and `c` as `Awaiting`
//! jobs that start only once the job before them succeeded, each with its own retries.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;

use super::new_job;
use super::transactional::EnqueueConnection;
use crate::storage::{Admitted, LifecycleStore, NewJob};
use crate::{Job, JobId, JobState, Jobs, Result};

/// A job and its continuations being enqueued; `.await` it to store them all in one
/// transaction and get their ids in the order given.
///
/// The ids of the continuations derive from the first job's id, so enqueuing a chain
/// again under a dedupe id (`.id(JobId::from_key(…))`) creates nothing a second time.
/// Likewise for a unique first job: when it is a duplicate, nothing is stored, and the
/// ids answered are the existing job's and those derived from it.
#[must_use = "a chain does nothing until it is awaited"]
pub struct Chain<'a> {
    jobs: &'a Jobs,
    rows: Result<Vec<NewJob>>,
    /// Index of the job the next `.then` waits for.
    tail: usize,
}

impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self
            .rows
            .as_ref()
            .map(|rows| rows.iter().map(|row| row.name.as_str()).collect())
            .unwrap_or_default();
        f.debug_struct("Chain").field("jobs", &names).finish()
    }
}

impl<'a> Chain<'a> {
    pub(crate) fn new(jobs: &'a Jobs, first: Result<NewJob>) -> Self {
        Self {
            jobs,
            rows: first.map(|row| vec![row]),
            tail: 0,
        }
    }

    /// Runs `next` after the job before it succeeds.
    pub fn then<K: Job>(mut self, next: K) -> Self {
        if let Some(index) = self.push(&next, false) {
            self.tail = index;
        }
        self
    }

    /// Runs `job` if the job before it fails for good. It does not extend the chain:
    /// a `.then` after it still follows the job before it.
    pub fn on_failure<K: Job>(mut self, job: K) -> Self {
        self.push(&job, true);
        self
    }

    /// Adds an awaiting continuation of the tail; returns its index.
    fn push<K: Job>(&mut self, job: &K, on_failure: bool) -> Option<usize> {
        let rows = self.rows.as_mut().ok()?;
        let parent = &rows[self.tail];
        let (first, parent_id, now) = (rows[0].id, parent.id, parent.created_at);
        let index = rows.len();
        let id = continuation_id(first, index);
        match new_job(job, Some(id), now, now) {
            Ok(mut row) => {
                row.state = JobState::Awaiting;
                row.parent_id = Some(parent_id);
                row.on_failure = on_failure;
                rows.push(row);
                Some(index)
            }
            Err(error) => {
                self.rows = Err(error);
                None
            }
        }
    }

    /// Stores the chain inside the caller's own transaction.
    pub async fn within<C: EnqueueConnection + ?Sized>(self, conn: &mut C) -> Result<Vec<JobId>> {
        let rows = self.rows?;
        let storage = self.jobs.storage();
        let first = if rows[0].unique.is_some() {
            super::transactional::jobs_admit(storage, conn, &rows).await?[0]
        } else {
            super::transactional::jobs_insert(storage, conn, &rows).await?;
            Admitted::Stored
        };
        self.jobs.notify_enqueued();
        Ok(chain_ids(&rows, first))
    }

    async fn send(self) -> Result<Vec<JobId>> {
        let rows = self.rows?;
        let storage = self.jobs.storage();
        let first = if rows[0].unique.is_some() {
            storage.jobs_admit(&rows).await?[0]
        } else {
            storage.jobs_insert(&rows).await?;
            Admitted::Stored
        };
        self.jobs.notify_enqueued();
        Ok(chain_ids(&rows, first))
    }
}

/// The id of the `index`th job of the chain whose first job is `first`.
fn continuation_id(first: JobId, index: usize) -> JobId {
    JobId::from_key(&format!("{first}/continuation/{index}"))
}

/// The ids a chain answers: its own, or when its first job was a duplicate, that job's
/// and the ids of the continuations it would have under it.
fn chain_ids(rows: &[NewJob], first: Admitted) -> Vec<JobId> {
    match first {
        Admitted::Duplicate(holder) | Admitted::Replaced(holder) => std::iter::once(holder)
            .chain((1..rows.len()).map(|index| continuation_id(holder, index)))
            .collect(),
        Admitted::Stored | Admitted::Skipped => rows.iter().map(|row| row.id).collect(),
    }
}

impl<'a> IntoFuture for Chain<'a> {
    type Output = Result<Vec<JobId>>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Vec<JobId>>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}
