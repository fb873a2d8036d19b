//! Why an attempt failed: [`Failure`], the [`JobError`] trait through which an error
//! type says how to retry it, and how `#[job]` turns a fn's error into a failure.

use std::fmt;
use std::time::Duration;

/// Why one attempt of a job failed.
///
/// A job fn's error becomes one. Return one yourself (a job fn may return
/// `Result<(), Failure>`, and an `anyhow::Error` may carry one in its chain) to say that
/// retrying is pointless, or when to come back:
///
/// ```
/// use jobs_core::Failure;
///
/// fn classify(status: u16) -> Failure {
///     match status {
///         401 | 403 => Failure::permanent(format!("the model refused the key ({status})")),
///         _ => Failure::new(format!("the model answered {status}")),
///     }
/// }
/// assert!(classify(401).is_permanent());
/// assert!(!classify(503).is_permanent());
///
/// // A 429 that says when to come back: the next attempt runs then, not after the backoff.
/// let limited = Failure::new("429 Too Many Requests").with_retry_after(Duration::from_secs(90));
/// assert_eq!(limited.retry_after(), Some(Duration::from_secs(90)));
/// # use std::time::Duration;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    message: String,
    sources: Vec<String>,
    permanent: bool,
    retry_after: Option<Duration>,
    backtrace: Option<String>,
    /// The payload did not decode for this build: during a deploy, a server of another
    /// build may decode it (see the server's version-skew put-back).
    undecodable: bool,
}

impl Failure {
    /// A failed attempt that is retried while retries remain.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            sources: Vec::new(),
            permanent: false,
            retry_after: None,
            backtrace: None,
            undecodable: false,
        }
    }

    /// A payload that does not decode as the job's data in this build: permanent, and
    /// marked so that a server can put it back for a server of another build.
    pub(crate) fn undecodable(message: impl Into<String>) -> Self {
        Self {
            undecodable: true,
            ..Self::permanent(message)
        }
    }

    /// Whether the payload did not decode for this build.
    pub(crate) fn is_undecodable(&self) -> bool {
        self.undecodable
    }

    /// A failure that retrying cannot fix (unknown job, payload that does not decode):
    /// the job goes straight to `Failed`.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            permanent: true,
            ..Self::new(message)
        }
    }

    /// A failure from an error, with its `source()` chain. A [`Failure`] in the chain
    /// (the error itself or one of its sources) gives its retry advice: permanent, or a
    /// retry-after.
    pub fn from_error(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut sources = Vec::new();
        let mut advice = error.downcast_ref::<Failure>();
        let mut next = error.source();
        while let Some(source) = next {
            sources.push(source.to_string());
            advice = advice.or_else(|| source.downcast_ref::<Failure>());
            next = source.source();
        }
        Self {
            message: error.to_string(),
            sources,
            permanent: advice.is_some_and(|advice| advice.permanent),
            retry_after: advice.and_then(|advice| advice.retry_after),
            backtrace: None,
            undecodable: false,
        }
    }

    /// A failure from an error whose type says how to retry it.
    pub fn from_job_error<E: JobError + 'static>(error: &E) -> Self {
        let failure = Self::from_error(error);
        Self {
            permanent: failure.permanent || error.is_permanent(),
            retry_after: error.retry_after().or(failure.retry_after),
            ..failure
        }
    }

    /// The same failure, but with the next attempt `after` from now instead of after the
    /// job's backoff (what a `429 Too Many Requests` or `503` says in `Retry-After`). It
    /// still counts as an attempt: with no retries left the job fails.
    #[must_use]
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// When the next attempt should run, if the error said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// A failure from an `anyhow::Error`: its message, its chain and, when it captured
    /// one, its backtrace.
    ///
    /// anyhow captures a backtrace when the error is created if `RUST_BACKTRACE` or
    /// `RUST_LIB_BACKTRACE` is set. A plain `std::error::Error` cannot hand over a
    /// backtrace on stable Rust (`Error::provide` is unstable), so only anyhow's is kept.
    pub fn from_anyhow(error: &anyhow::Error) -> Self {
        let failure = Self::from_error(error.as_ref());
        let backtrace = error.backtrace();
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            failure.with_backtrace(backtrace.to_string())
        } else {
            failure
        }
    }

    /// The same failure with the backtrace of where it happened, stored with the
    /// attempt (cut at 16 KiB) and shown folded on the job's page.
    #[must_use]
    pub fn with_backtrace(mut self, backtrace: impl Into<String>) -> Self {
        self.backtrace = Some(backtrace.into());
        self
    }

    /// The backtrace of where it happened, when one was captured.
    pub fn backtrace(&self) -> Option<&str> {
        self.backtrace.as_deref()
    }

    /// The error's own message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The messages of the error's sources, outermost first.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// Whether retrying is pointless.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for source in &self.sources {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

/// A failure is an error, so that it travels inside an `anyhow::Error` or as the source
/// of an app's own error and keeps its retry advice there.
impl std::error::Error for Failure {}

/// An error type that says how a job that failed with it should be retried: not at
/// all, or not before a given time. A job fn returning `Result<_, E>` with `E:
/// JobError` is retried as its errors say; any other error is retried with the job's
/// backoff while retries remain.
///
/// ```
/// use std::time::Duration;
///
/// #[derive(Debug)]
/// enum ModelError {
///     Unauthorized,
///     RateLimited { retry_after: Duration },
/// }
/// # impl std::fmt::Display for ModelError {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("model error") }
/// # }
/// impl std::error::Error for ModelError {}
///
/// impl jobs_core::JobError for ModelError {
///     fn is_permanent(&self) -> bool {
///         matches!(self, Self::Unauthorized) // a bad key stays bad: fail at once
///     }
///     fn retry_after(&self) -> Option<Duration> {
///         match self {
///             Self::RateLimited { retry_after } => Some(*retry_after),
///             Self::Unauthorized => None,
///         }
///     }
/// }
/// ```
pub trait JobError: std::error::Error {
    /// Whether retrying is pointless: the job fails at once, whatever retries remain.
    fn is_permanent(&self) -> bool {
        false
    }

    /// When the next attempt should run, instead of after the job's backoff.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// Turns whatever error a job fn returned into a [`Failure`], keeping as much as the
/// type allows: the source chain of a `std::error::Error`, of an `anyhow::Error` or a
/// boxed error, or just the `Display` text.
///
/// `#[job]` calls `(&&&&&&ErrorProbe(e)).to_failure()`; method resolution picks the
/// most specific impl below (autoref specialisation), all on stable Rust: a
/// [`Failure`] as it is, a [`JobError`] with its advice, then an `anyhow::Error` (which
/// also gives its backtrace when it captured one), a `std::error::Error`, a boxed error,
/// and anything `Display`.
#[doc(hidden)]
#[derive(Debug)]
pub struct ErrorProbe<E>(pub E);

#[doc(hidden)]
pub trait ProbeFailure {
    fn to_failure(&self) -> Failure;
}

impl ProbeFailure for &&&&&ErrorProbe<Failure> {
    fn to_failure(&self) -> Failure {
        self.0.clone()
    }
}

#[doc(hidden)]
pub trait ProbeJobError {
    fn to_failure(&self) -> Failure;
}

impl<E: JobError + 'static> ProbeJobError for &&&&ErrorProbe<E> {
    fn to_failure(&self) -> Failure {
        Failure::from_job_error(&self.0)
    }
}

#[doc(hidden)]
pub trait ProbeAnyhow {
    fn to_failure(&self) -> Failure;
}

impl ProbeAnyhow for &&&ErrorProbe<anyhow::Error> {
    fn to_failure(&self) -> Failure {
        Failure::from_anyhow(&self.0)
    }
}

#[doc(hidden)]
pub trait ProbeStdError {
    fn to_failure(&self) -> Failure;
}

impl<E: std::error::Error + 'static> ProbeStdError for &&ErrorProbe<E> {
    fn to_failure(&self) -> Failure {
        Failure::from_error(&self.0)
    }
}

#[doc(hidden)]
pub trait ProbeDynError {
    fn to_failure(&self) -> Failure;
}

impl<E: AsRef<dyn std::error::Error + Send + Sync + 'static>> ProbeDynError for &ErrorProbe<E> {
    fn to_failure(&self) -> Failure {
        Failure::from_error(self.0.as_ref())
    }
}

#[doc(hidden)]
pub trait ProbeDisplay {
    fn to_failure(&self) -> Failure;
}

impl<E: fmt::Display> ProbeDisplay for ErrorProbe<E> {
    fn to_failure(&self) -> Failure {
        Failure::new(self.0.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_anyhow_error_gives_its_chain_and_the_backtrace_it_captured() {
        let error = anyhow::anyhow!("disk full").context("cannot write the report");
        let captured = error.backtrace().status() == std::backtrace::BacktraceStatus::Captured;
        let expected = captured.then(|| error.backtrace().to_string());
        // What `#[job]` generates for a fn's error.
        #[allow(clippy::needless_borrow)]
        let failure = (&&&&&&ErrorProbe(error)).to_failure();
        assert_eq!(failure.message(), "cannot write the report");
        assert_eq!(failure.sources(), ["disk full"]);
        // anyhow captures only when RUST_BACKTRACE or RUST_LIB_BACKTRACE asks it to.
        assert_eq!(failure.backtrace().map(str::to_owned), expected);
    }

    #[test]
    fn a_std_error_has_its_chain_and_no_backtrace() {
        // As `#[job]` calls it, whatever the error's type.
        #[allow(clippy::needless_borrow)]
        let failure = (&&&&&&ErrorProbe(std::io::Error::other("disk full"))).to_failure();
        assert_eq!(failure.message(), "disk full");
        assert_eq!(failure.backtrace(), None);
        let kept = Failure::new("boom").with_backtrace("   0: app::job");
        assert_eq!(kept.backtrace(), Some("   0: app::job"));
        assert_eq!(
            kept.to_string(),
            "boom",
            "the backtrace is not part of the message"
        );
    }
}
