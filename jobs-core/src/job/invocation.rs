//! What a running job receives: the stored payload, its [`JobContext`] and the server's
//! state, and the parameters built from them.

use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::Failure;
use crate::storage::BatchMember;
use crate::{Job, JobContext, JobId};

/// A value the application gave the server with `.state(…)`, injected into every job
/// that takes a `State<T>` parameter — axum's `State`, for jobs.
#[derive(Debug, Clone, Copy, Default)]
pub struct State<T>(pub T);

/// The values given to a server with `.state(…)`, one per type.
#[derive(Clone, Default)]
pub struct StateMap(Arc<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>);

impl fmt::Debug for StateMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateMap")
            .field("values", &self.0.len())
            .finish()
    }
}

impl StateMap {
    pub(crate) fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        Arc::make_mut(&mut self.0).insert(TypeId::of::<T>(), Arc::new(value));
    }

    fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.0
            .get(&TypeId::of::<T>())
            .and_then(|value| value.downcast_ref::<T>())
            .cloned()
    }
}

/// One attempt as handed to a job's [`RunFn`](super::RunFn): the stored payload, the
/// context and the server's state.
#[derive(Debug)]
pub struct Invocation {
    payload: String,
    context: JobContext,
    state: StateMap,
    /// The parent's result, read for jobs that take a `Parent<T>`: `None` when the job
    /// has no parent (or it was not read), `Some(None)` when the parent returned nothing.
    parent: Option<Option<String>>,
    /// The members of the batch whose fan-in the job is, read for jobs that take a
    /// `BatchResults<J>`: `None` when the job is no fan-in (or they were not read).
    batch: Option<Vec<BatchMember>>,
}

impl Invocation {
    pub(crate) fn new(payload: String, context: JobContext, state: StateMap) -> Self {
        Self {
            payload,
            context,
            state,
            parent: None,
            batch: None,
        }
    }

    /// With the members of the batch whose fan-in the job is, as read for a
    /// `BatchResults<J>` parameter.
    pub(crate) fn with_batch(mut self, members: Option<Vec<BatchMember>>) -> Self {
        self.batch = members;
        self
    }

    /// With the result of the job's parent, as read for a `Parent<T>` parameter.
    pub(crate) fn with_parent(mut self, parent: Option<Option<String>>) -> Self {
        self.parent = parent;
        self
    }

    /// Decodes the stored payload; a payload that no longer decodes (the job's
    /// parameters changed) is a permanent failure that says why.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Failure> {
        serde_json::from_str(&self.payload).map_err(|error| {
            Failure::undecodable(format!(
                "payload of job `{}` does not decode as {}: {error}",
                self.context.name(),
                type_name::<T>()
            ))
        })
    }

    /// Builds one injected parameter.
    pub fn extract<T: FromInvocation>(&self) -> Result<T, Failure> {
        T::from_invocation(self)
    }
}

/// A job parameter filled in by the runtime instead of the payload.
pub trait FromInvocation: Sized {
    /// Builds the parameter for this attempt.
    fn from_invocation(invocation: &Invocation) -> Result<Self, Failure>;
}

impl FromInvocation for JobContext {
    fn from_invocation(invocation: &Invocation) -> Result<Self, Failure> {
        Ok(invocation.context.clone())
    }
}

/// What the job before this one in a chain returned (its parent's result): a job fn
/// parameter filled in before each attempt, so a retry gets the same value without
/// running the parent again.
///
/// The job must be a continuation (`.then(…)` of a job whose fn returns
/// `Result<T, E>`); without a parent, or with a parent result that does not decode as
/// `T`, the attempt fails for good saying so. After an `on_failure` the parent has no
/// result: take a `Parent<Option<T>>` there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Parent<T>(pub T);

impl<T: DeserializeOwned> FromInvocation for Parent<T> {
    fn from_invocation(invocation: &Invocation) -> Result<Self, Failure> {
        let Some(result) = &invocation.parent else {
            return Err(Failure::permanent(format!(
                "job `{}` takes Parent<{}> but has no parent: enqueue it as the next step of \
                 another job, with `.then(…)`",
                invocation.context.name(),
                type_name::<T>()
            )));
        };
        serde_json::from_str(result.as_deref().unwrap_or("null"))
            .map(Parent)
            .map_err(|error| {
                Failure::permanent(format!(
                    "the result of the job before `{}` does not decode as {}: {error}",
                    invocation.context.name(),
                    type_name::<T>()
                ))
            })
    }
}

/// What the members of type `J` of the batch whose fan-in this job is returned, by
/// member id in id order: a job fn parameter filled in before each attempt, like
/// [`Parent`]. Only members that succeeded count (a `then` job runs when all did; an
/// `on_failure` job sees those that did). The job must be a fan-in (`.then(…)` or
/// `.on_failure(…)` of a batch); otherwise, or when a result does not decode as
/// `J::Output`, the attempt fails for good saying so.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchResults<J: Job>(pub Vec<(JobId, J::Output)>);

impl<J: Job> FromInvocation for BatchResults<J> {
    fn from_invocation(invocation: &Invocation) -> Result<Self, Failure> {
        let Some(members) = &invocation.batch else {
            return Err(Failure::permanent(format!(
                "job `{}` takes BatchResults<{}> but is the fan-in of no batch: give it to \
                 a batch with `.then(…)` or `.on_failure(…)`",
                invocation.context.name(),
                type_name::<J>()
            )));
        };
        crate::client::batch::member_results::<J>(members)
            .map(BatchResults)
            .map_err(|error| Failure::permanent(error.to_string()))
    }
}

impl<T: Clone + Send + Sync + 'static> FromInvocation for State<T> {
    fn from_invocation(invocation: &Invocation) -> Result<Self, Failure> {
        invocation.state.get::<T>().map(State).ok_or_else(|| {
            Failure::permanent(format!(
                "job `{}` takes State<{}> but the server was given no such state; \
                 add `.state(value)` to the JobServer builder",
                invocation.context.name(),
                type_name::<T>()
            ))
        })
    }
}
