//! Job identifiers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The id of a job: a time-ordered UUIDv7, or one derived from a caller's key for dedupe.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(Uuid);

/// Namespace for ids derived from keys, so `from_key` never collides with other UUIDv5 users.
const KEY_NAMESPACE: Uuid = Uuid::from_u128(0x6a6f_6273_2d6b_6579_8000_0000_0000_0001);

impl JobId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// The id for a caller's key: the same key always gives the same id, so enqueuing
    /// twice with `.id(JobId::from_key("report-2026-w48"))` creates one job.
    pub fn from_key(key: &str) -> Self {
        Self(Uuid::new_v5(&KEY_NAMESPACE, key.as_bytes()))
    }

    /// The id as a UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl From<Uuid> for JobId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({})", self.0)
    }
}

impl FromStr for JobId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// The id of a batch ([`Jobs::batch`](crate::Jobs::batch)): a time-ordered UUIDv7.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BatchId(JobId);

impl BatchId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        Self(JobId::new())
    }

    /// The id as a UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0.as_uuid()
    }

    /// The id as the storage keeps it, in the id type its rows share.
    pub(crate) fn as_job_id(self) -> JobId {
        self.0
    }
}

impl Default for BatchId {
    fn default() -> Self {
        Self::new()
    }
}

impl From<Uuid> for BatchId {
    fn from(id: Uuid) -> Self {
        Self(JobId::from(id))
    }
}

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BatchId({})", self.0)
    }
}

impl FromStr for BatchId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobId::from_str(s).map(Self)
    }
}
