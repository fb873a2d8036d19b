//! Backoff policies as people write them: `fixed(30s)`, `exponential(2s)`,
//! `exponential(2s, max = 1h)`.

use std::fmt;
use std::time::Duration;

use crate::{DurationUse, parse_duration};

/// How long a job waits before each retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackoffPolicy {
    /// The same delay before every retry.
    Fixed(Duration),
    /// `base` before the first retry, doubling before each next one, never more than
    /// `max` when given.
    Exponential {
        /// The delay before the first retry.
        base: Duration,
        /// The longest delay.
        max: Option<Duration>,
    },
}

/// A backoff string that is not valid, with what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackoffError {
    text: String,
    reason: String,
}

impl BackoffError {
    /// The string that was refused.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// What is wrong, without the hint.
    pub fn message(&self) -> String {
        format!("invalid backoff `{}`: {}", self.text, self.reason)
    }

    /// How a backoff is written.
    pub fn hint(&self) -> &'static str {
        "a backoff is `fixed(30s)`, `exponential(2s)` or `exponential(2s, max = 1h)`, its \
         durations numbers with the units `ms`, `s`, `m`, `h` or `d`"
    }
}

impl fmt::Display for BackoffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.hint())
    }
}

impl std::error::Error for BackoffError {}

/// Parses a backoff policy.
///
/// ```
/// use std::time::Duration;
/// use jobs_grammar::{BackoffPolicy, parse_backoff};
///
/// assert_eq!(parse_backoff("fixed(30s)"), Ok(BackoffPolicy::Fixed(Duration::from_secs(30))));
/// assert_eq!(
///     parse_backoff("exponential(2s, max = 1h)"),
///     Ok(BackoffPolicy::Exponential {
///         base: Duration::from_secs(2),
///         max: Some(Duration::from_secs(3600)),
///     })
/// );
/// ```
pub fn parse_backoff(text: &str) -> Result<BackoffPolicy, BackoffError> {
    let fail = |reason: String| BackoffError {
        text: text.to_owned(),
        reason,
    };
    let trimmed = text.trim();
    let Some((kind, rest)) = trimmed.split_once('(') else {
        return Err(fail(
            "it names no policy: write `fixed(…)` or `exponential(…)`".into(),
        ));
    };
    let Some(arguments) = rest.strip_suffix(')') else {
        return Err(fail("it does not end with `)`".into()));
    };
    let duration = |text: &str| {
        let parsed = parse_duration(text.trim(), DurationUse::Delay)
            .map_err(|error| fail(error.message()))?;
        Ok::<_, BackoffError>(parsed)
    };
    let arguments: Vec<&str> = arguments.split(',').map(str::trim).collect();
    match (kind.trim(), arguments.as_slice()) {
        ("fixed", [delay]) => Ok(BackoffPolicy::Fixed(duration(delay)?)),
        ("fixed", _) => Err(fail("`fixed` takes one duration".into())),
        ("exponential", [base]) => Ok(BackoffPolicy::Exponential {
            base: duration(base)?,
            max: None,
        }),
        ("exponential", [base, max]) => {
            let Some(max) = max
                .split_once('=')
                .filter(|(key, _)| key.trim() == "max")
                .map(|(_, value)| value)
            else {
                return Err(fail(format!(
                    "`{max}` is not `max = <duration>`, the longest delay"
                )));
            };
            let (base, max) = (duration(base)?, duration(max)?);
            if max < base {
                return Err(fail("its `max` is shorter than its first delay".into()));
            }
            Ok(BackoffPolicy::Exponential {
                base,
                max: Some(max),
            })
        }
        ("exponential", _) => Err(fail(
            "`exponential` takes a first delay and, optionally, `max = <duration>`".into(),
        )),
        (other, _) => Err(fail(format!(
            "`{other}` is not a policy: write `fixed(…)` or `exponential(…)`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_with_spaces_anywhere() {
        assert_eq!(
            parse_backoff(" exponential( 500ms ,max=2m ) "),
            Ok(BackoffPolicy::Exponential {
                base: Duration::from_millis(500),
                max: Some(Duration::from_secs(120)),
            })
        );
        assert_eq!(
            parse_backoff("exponential(1h 30m)"),
            Ok(BackoffPolicy::Exponential {
                base: Duration::from_secs(5400),
                max: None,
            })
        );
    }

    #[test]
    fn every_mistake_says_what_is_wrong() {
        let message = |text: &str| parse_backoff(text).unwrap_err().message();
        assert_eq!(
            message("30s"),
            "invalid backoff `30s`: it names no policy: write `fixed(…)` or `exponential(…)`"
        );
        assert_eq!(
            message("linear(5s)"),
            "invalid backoff `linear(5s)`: `linear` is not a policy: write `fixed(…)` or \
             `exponential(…)`"
        );
        assert_eq!(
            message("fixed(30)"),
            "invalid backoff `fixed(30)`: invalid delay `30`: `30` has no unit"
        );
        assert_eq!(
            message("fixed(0s)"),
            "invalid backoff `fixed(0s)`: invalid delay `0s`: it must be more than zero"
        );
        assert_eq!(
            message("exponential(2s, cap = 1h)"),
            "invalid backoff `exponential(2s, cap = 1h)`: `cap = 1h` is not `max = <duration>`, \
             the longest delay"
        );
        assert_eq!(
            message("exponential(1h, max = 2s)"),
            "invalid backoff `exponential(1h, max = 2s)`: its `max` is shorter than its first \
             delay"
        );
        assert_eq!(
            message("fixed(1s, 2s)"),
            "invalid backoff `fixed(1s, 2s)`: `fixed` takes one duration"
        );
        assert_eq!(
            message("fixed(1s"),
            "invalid backoff `fixed(1s`: it does not end with `)`"
        );
    }
}
