//! The error type of every fallible call in `jobs`.

use crate::JobId;

/// What can go wrong when talking to `jobs`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database answered with an error or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A newer build migrated the database to a schema this build cannot work with.
    #[error(
        "the database's schema is at version {found}, migrated by jobs {release}, and needs \
         a build that knows schema version {needs} or later; this build knows up to {knows}: \
         run a build of jobs {release} or later here (see \"Upgrading\" in the README)"
    )]
    SchemaTooNew {
        /// The newest schema version applied to the database.
        found: i64,
        /// The lowest schema version a build must know to work on it.
        needs: i64,
        /// The newest schema version this build knows.
        knows: i64,
        /// The release of `jobs` that last migrated it.
        release: String,
    },
    /// A job's data could not be turned into JSON.
    #[error("job payload could not be serialized: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The database URL names a backend this build does not include.
    #[error("unsupported database URL `{url}`: {reason}")]
    UnsupportedUrl {
        /// The URL as given, with any password removed.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// No job has this id.
    #[error("no job with id {0}")]
    JobNotFound(JobId),
    /// No batch has this id.
    #[error("no batch with id {0}")]
    BatchNotFound(crate::BatchId),
    /// A job was read as a job type it is not.
    #[error("job {id} is a `{actual}`, not a `{expected}`")]
    WrongJob {
        /// The job.
        id: JobId,
        /// The name of the job type it was read as.
        expected: &'static str,
        /// The name it is stored under.
        actual: String,
    },
    /// A job's stored result does not read as its job type's output (the type changed
    /// since the job ran).
    #[error("the result of job {id} does not read back: {reason}")]
    UndecodableResult {
        /// The job.
        id: JobId,
        /// What serde said.
        reason: String,
    },
    /// A job deleted while it ran cannot be requeued until its attempt has stopped:
    /// requeued now, it would run twice at once.
    #[error("job {id} is still stopping on server {server}; requeue it when it has stopped")]
    StillRunning {
        /// The job.
        id: JobId,
        /// The server whose attempt has not stopped yet.
        server: String,
    },
    /// No recurring job has this id.
    #[error("no recurring job with id `{0}`")]
    RecurringNotFound(String),
    /// A cron expression, zone or interval is not valid.
    #[error(transparent)]
    Schedule(#[from] crate::ScheduleError),
    /// A setting or argument is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// `Result` with [`Error`] as its default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
