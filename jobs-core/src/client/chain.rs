//! Continuations: `jobs.enqueue(a).then(b).then(c)` stores `b` and `c` as `Awaiting`
//! jobs that start only once the job before them succeeded, each with its own retries.
//! A batch can be a step (`.then_batch(batch)`): its members await the job before it,
//! and what follows it awaits its fan-in.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;

use super::batch::{Batch, BatchStep};
use super::new_job;
use super::transactional::EnqueueConnection;
use crate::storage::{Admitted, BatchStore, LifecycleStore, NewJob};
use crate::{Error, Job, JobId, JobState, Jobs, Result};

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
    /// What the next `.then` waits for.
    tail: Tail,
    /// The batch step, if any.
    batch: Option<BatchStep>,
    /// The first job was given its id (`Enqueue::id`): a second enqueue of the chain
    /// must store nothing.
    keyed: bool,
}

/// What the next step of a chain waits for.
#[derive(Debug, Clone, Copy)]
enum Tail {
    /// The job at this index of the rows.
    Job(usize),
    /// The batch step, which has no `then` job yet: the next `.then` becomes it. The
    /// index is that of the job before the batch.
    Batch(usize),
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
    pub(crate) fn new(jobs: &'a Jobs, first: Result<NewJob>, keyed: bool) -> Self {
        Self {
            jobs,
            rows: first.map(|row| vec![row]),
            tail: Tail::Job(0),
            batch: None,
            keyed,
        }
    }

    /// Runs `next` after the job before it succeeds; after a batch, once every member
    /// of the batch succeeded: `next` is then the batch's `then` job, or when it has
    /// one, runs after it.
    pub fn then<K: Job>(mut self, next: K) -> Self {
        let added = match self.tail {
            Tail::Job(_) => self.push(&next, false),
            Tail::Batch(_) => self.push_fan_in(&next, "then"),
        };
        if let Some(index) = added {
            self.tail = Tail::Job(index);
        }
        self
    }

    /// Runs `job` if the job before it fails for good. It does not extend the chain:
    /// a `.then` after it still follows the job before it. Right after a batch without
    /// a `then` job, `job` is the batch's `on_failure` job (when the batch has one
    /// already, an [`Error::Config`] when the chain is awaited).
    pub fn on_failure<K: Job>(mut self, job: K) -> Self {
        match self.tail {
            Tail::Job(_) => {
                self.push(&job, true);
            }
            Tail::Batch(_) => {
                self.push_fan_in(&job, "on_failure");
            }
        }
        self
    }

    /// Runs the members of `batch` once the job before it succeeded (they wait
    /// `Awaiting` until then, and are deleted with it); a `.then` after it follows the
    /// batch's fan-in. The chain and the batch are stored in one transaction; the ids
    /// the chain answers are those of its jobs and the batch's fan-in jobs, not the
    /// members'. A chain takes one batch, and cannot start with a unique job or one
    /// enqueued under an id of its own (`Enqueue::id`), since enqueuing it again would
    /// store the batch again; either is an [`Error::Config`] when the chain is awaited.
    pub fn then_batch(mut self, batch: Batch<'_>) -> Self {
        let tail = match (&self.batch, self.tail) {
            (None, Tail::Job(tail)) => tail,
            _ => {
                self.rows = Err(Error::Config("a chain takes one batch".into()));
                return self;
            }
        };
        let Ok(rows) = &mut self.rows else {
            return self;
        };
        let mut step = match batch.into_step() {
            Ok(step) => step,
            Err(error) => {
                self.rows = Err(error);
                return self;
            }
        };
        let parent = rows[tail].id;
        for member in &mut step.members {
            member.state = JobState::Awaiting;
            member.parent_id = Some(parent);
        }
        let empty = step.members.is_empty();
        self.tail = Tail::Batch(tail);
        for (fan_in, on_failure) in [(&mut step.then, false), (&mut step.on_failure, true)] {
            if let Some(fan_in) = fan_in {
                if empty {
                    // Nothing to wait for but the job before: a continuation of it.
                    fan_in.parent_id = Some(parent);
                    fan_in.on_failure = on_failure;
                }
                rows.push(fan_in.clone());
                if !on_failure {
                    self.tail = Tail::Job(rows.len() - 1);
                }
            }
        }
        self.batch = Some(step);
        self
    }

    /// Adds `job` as the batch step's fan-in in `role`, when it has none; returns its
    /// index.
    fn push_fan_in<K: Job>(&mut self, job: &K, role: &str) -> Option<usize> {
        let (Ok(rows), Some(step), Tail::Batch(before)) =
            (&mut self.rows, &mut self.batch, self.tail)
        else {
            return None;
        };
        let taken = match role {
            "then" => step.then.is_some(),
            _ => step.on_failure.is_some(),
        };
        if taken {
            self.rows = Err(Error::Config(format!(
                "the batch of the chain has an `{role}` job already"
            )));
            return None;
        }
        let mut row = match step.fan_in(job, role) {
            Ok(row) => row,
            Err(error) => {
                self.rows = Err(error);
                return None;
            }
        };
        if step.members.is_empty() {
            // Nothing to wait for but the job before: a continuation of it.
            row.parent_id = Some(rows[before].id);
            row.on_failure = role == "on_failure";
        }
        let slot = if role == "then" {
            &mut step.then
        } else {
            &mut step.on_failure
        };
        *slot = Some(row.clone());
        rows.push(row);
        Some(rows.len() - 1)
    }

    /// Adds an awaiting continuation of the tail; returns its index.
    fn push<K: Job>(&mut self, job: &K, on_failure: bool) -> Option<usize> {
        let Tail::Job(tail) = self.tail else {
            return None;
        };
        let rows = self.rows.as_mut().ok()?;
        let parent = &rows[tail];
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

    /// Stores the chain inside the caller's own transaction. A chain with a batch is
    /// an [`Error::Config`] here: batches are stored in a transaction of their own.
    pub async fn within<C: EnqueueConnection + ?Sized>(self, conn: &mut C) -> Result<Vec<JobId>> {
        if self.batch.is_some() {
            return Err(Error::Config(
                "a chain with a batch cannot be stored in the caller's transaction".into(),
            ));
        }
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
        if let Some(step) = self.batch {
            if self.keyed || rows[0].unique.is_some() {
                return Err(Error::Config(
                    "a chain with a batch cannot start with a unique job or one enqueued \
                     under an id of its own: a second enqueue would store the batch again"
                        .into(),
                ));
            }
            let ids = rows.iter().map(|row| row.id).collect();
            // The batch's fan-in jobs are rows of the chain too: store each once.
            let (batch, members, _) = step.rows();
            storage.batch_insert(&batch, &members, &rows).await?;
            self.jobs.notify_enqueued();
            return Ok(ids);
        }
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
