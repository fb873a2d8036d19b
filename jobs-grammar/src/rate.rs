//! Rates as people write them: `50/1m`, `20/1s`, `1000/1h`: at most so many starts in
//! any window of the period.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::{DurationUse, format_duration, parse_duration};

/// At most `count` starts in any window of `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    /// How many may start within one period; at least 1.
    pub count: u32,
    /// The length of the window; at least a millisecond.
    pub period: Duration,
}

impl Rate {
    /// `count` starts in any window of `period`.
    pub const fn per(count: u32, period: Duration) -> Self {
        Self { count, period }
    }
}

impl fmt::Display for Rate {
    /// As it is written: `50/1m`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, format_duration(self.period))
    }
}

impl FromStr for Rate {
    type Err = RateError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_rate(text)
    }
}

/// A rate string that is not valid, with what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateError {
    text: String,
    reason: String,
}

impl RateError {
    /// The string that was refused.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// What is wrong, without the hint.
    pub fn message(&self) -> String {
        format!("invalid rate `{}`: {}", self.text, self.reason)
    }

    /// How a rate is written.
    pub fn hint(&self) -> &'static str {
        "a rate is a number of starts, `/` and a period, such as `50/1m`, `20/1s` or \
         `1000/1h`, the period a number with the unit `ms`, `s`, `m`, `h` or `d`"
    }
}

impl fmt::Display for RateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.hint())
    }
}

impl std::error::Error for RateError {}

/// Parses a rate: a whole number of starts from 1, `/`, and a period (a duration of at
/// least a millisecond).
///
/// ```
/// use std::time::Duration;
/// use jobs_grammar::{Rate, parse_rate};
///
/// assert_eq!(parse_rate("50/1m"), Ok(Rate::per(50, Duration::from_secs(60))));
/// assert_eq!(
///     parse_rate("50 per minute").unwrap_err().message(),
///     "invalid rate `50 per minute`: it has no `/` between the count and the period"
/// );
/// ```
pub fn parse_rate(text: &str) -> Result<Rate, RateError> {
    let fail = |reason: String| RateError {
        text: text.to_owned(),
        reason,
    };
    let Some((count, period)) = text.trim().split_once('/') else {
        return Err(fail(
            "it has no `/` between the count and the period".into(),
        ));
    };
    let count = count.trim();
    let count: u32 = match count.parse() {
        Ok(0) => return Err(fail("the count must be at least 1".into())),
        Ok(count) => count,
        Err(_) if !count.is_empty() && count.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(fail(format!("`{count}` is too large a count")));
        }
        Err(_) => return Err(fail(format!("`{count}` is not a whole number of starts"))),
    };
    let period = parse_duration(period.trim(), DurationUse::Interval)
        .map_err(|error| fail(format!("its period: {}", error.message())))?;
    Ok(Rate { count, period })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_count_per_period() {
        assert_eq!(
            parse_rate("20/1s"),
            Ok(Rate::per(20, Duration::from_secs(1)))
        );
        assert_eq!(
            parse_rate(" 5 / 500ms "),
            Ok(Rate::per(5, Duration::from_millis(500)))
        );
        assert_eq!(
            "1000/1h".parse::<Rate>(),
            Ok(Rate::per(1000, Duration::from_secs(3600)))
        );
    }

    #[test]
    fn writes_what_it_reads() {
        for text in ["50/1m", "20/1s", "3/1h30m", "7/250ms"] {
            assert_eq!(parse_rate(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn refuses_what_is_not_a_rate_saying_why() {
        let message = |text: &str| parse_rate(text).unwrap_err().message();
        assert_eq!(
            message("50"),
            "invalid rate `50`: it has no `/` between the count and the period"
        );
        assert_eq!(
            message("0/1s"),
            "invalid rate `0/1s`: the count must be at least 1"
        );
        assert_eq!(
            message("ten/1s"),
            "invalid rate `ten/1s`: `ten` is not a whole number of starts"
        );
        assert_eq!(
            message("-1/1s"),
            "invalid rate `-1/1s`: `-1` is not a whole number of starts"
        );
        assert_eq!(
            message("99999999999/1s"),
            "invalid rate `99999999999/1s`: `99999999999` is too large a count"
        );
        assert_eq!(
            message("5/0s"),
            "invalid rate `5/0s`: its period: invalid interval `0s`: it must be more than zero"
        );
        assert_eq!(
            message("5/minute"),
            "invalid rate `5/minute`: its period: invalid interval `minute`: expected a number at `minute`"
        );
    }
}
