//! Durations as people write them: `15m`, `1h30m`, `1h 30m`, `500ms`.

use std::fmt;
use std::time::Duration;

/// What a duration is for: it decides whether zero is allowed and what errors call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationUse {
    /// How often a recurring job fires (`every = "15m"`); more than zero.
    Interval,
    /// How long one attempt may run (`timeout = "5m"`); more than zero.
    Timeout,
    /// A delay before a retry (`backoff = "fixed(30s)"`); more than zero.
    Delay,
    /// How long an enqueue of the same arguments returns the first job
    /// (`unique = "1h"`); more than zero.
    Window,
    /// A duration in the settings (`poll_interval = "5s"`); zero is allowed, and each
    /// setting that needs more says so itself.
    Setting,
}

impl DurationUse {
    fn noun(self) -> &'static str {
        match self {
            Self::Interval => "interval",
            Self::Timeout => "timeout",
            Self::Delay => "delay",
            Self::Window => "unique window",
            Self::Setting => "duration",
        }
    }

    /// How a duration for this use is written, for error messages.
    pub fn hint(self) -> &'static str {
        match self {
            Self::Interval => {
                "an interval is numbers with the units `ms`, `s`, `m`, `h` or `d`, such as \
                 `15m`, `1h30m` or `90s`"
            }
            Self::Timeout => {
                "a timeout is numbers with the units `ms`, `s`, `m`, `h` or `d`, such as \
                 `30s`, `5m` or `1h30m`"
            }
            Self::Delay => {
                "a delay is numbers with the units `ms`, `s`, `m`, `h` or `d`, such as \
                 `30s`, `2m` or `1h`"
            }
            Self::Window => {
                "a unique window is numbers with the units `ms`, `s`, `m`, `h` or `d`, such \
                 as `10m`, `1h` or `7d`"
            }
            Self::Setting => {
                "a duration is numbers with the units `ms`, `s`, `m`, `h` or `d`, such as \
                 `500ms`, `15s` or `36h`"
            }
        }
    }

    fn allows_zero(self) -> bool {
        matches!(self, Self::Setting)
    }
}

/// A duration string that is not valid, with what is wrong and how it should look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    text: String,
    used_as: DurationUse,
    reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Reason {
    Empty,
    /// Valid once its spaces are removed: the text without them.
    Spaced(String),
    /// No number where one should be: the rest of the text from there.
    ExpectedNumber(String),
    /// A number with no unit after it.
    NoUnit(String),
    /// Not one of the units.
    NotAUnit(String),
    /// The number that takes the total past `u64::MAX` milliseconds.
    TooLarge(String),
    Zero,
    /// More than zero but less than the one millisecond durations are counted in.
    UnderAMillisecond,
}

impl DurationError {
    /// The text as given.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// What is wrong, naming the text: ``invalid interval `15 m`: write it without spaces: `15m` ``.
    pub fn message(&self) -> String {
        let noun = self.used_as.noun();
        let reason = match &self.reason {
            Reason::Empty => return format!("the {noun} is empty"),
            Reason::Spaced(joined) => format!("write it without spaces: `{joined}`"),
            Reason::ExpectedNumber(rest) => format!("expected a number at `{rest}`"),
            Reason::NoUnit(number) => format!("`{number}` has no unit"),
            Reason::NotAUnit(unit) => format!("`{unit}` is not a unit"),
            Reason::TooLarge(number) => format!("`{number}` is too large"),
            Reason::Zero => "it must be more than zero".to_owned(),
            Reason::UnderAMillisecond => "it must be at least `1ms`".to_owned(),
        };
        format!("invalid {noun} `{}`: {reason}", self.text)
    }

    /// How a duration is written.
    pub fn hint(&self) -> &'static str {
        self.used_as.hint()
    }
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.hint())
    }
}

impl std::error::Error for DurationError {}

/// Reads a duration for `used_as`.
///
/// A duration is one or more parts, each a whole number followed at once by a unit:
/// `ms`, `s`, `m` (minutes), `h` or `d` (24 hours). Parts add up and may be separated by
/// spaces (`1h 30m`), but a number and its unit may not (`15 m` is refused with a hint
/// to write `15m`). The total is a whole number of milliseconds, at most `u64::MAX` of
/// them. An interval or a timeout must be more than zero; a setting may be zero.
pub fn parse_duration(text: &str, used_as: DurationUse) -> Result<Duration, DurationError> {
    let error = |reason| DurationError {
        text: text.to_owned(),
        used_as,
        reason,
    };
    let millis = match millis(text) {
        Ok(millis) => millis,
        Err(reason) => {
            let joined: String = text.split_whitespace().collect();
            return Err(match reason {
                Reason::Empty => error(Reason::Empty),
                _ if joined != text.trim() && millis(&joined).is_ok() => {
                    error(Reason::Spaced(joined))
                }
                reason => error(reason),
            });
        }
    };
    if millis == 0 && !used_as.allows_zero() {
        return Err(error(Reason::Zero));
    }
    Ok(Duration::from_millis(millis))
}

/// Checks a duration given in code against the rules [`parse_duration`] applies to
/// text: whole milliseconds are what counts, at most `u64::MAX` of them, and more than
/// zero for an interval or a timeout.
pub fn check_duration(duration: Duration, used_as: DurationUse) -> Result<(), DurationError> {
    let error = |text: String, reason| DurationError {
        text,
        used_as,
        reason,
    };
    let millis = duration.as_millis();
    if u64::try_from(millis).is_err() {
        let text = format!("{millis}ms");
        return Err(error(text.clone(), Reason::TooLarge(text)));
    }
    match millis {
        0 if used_as.allows_zero() => Ok(()),
        0 if duration.is_zero() => Err(error("0s".to_owned(), Reason::Zero)),
        0 => Err(error(format!("{duration:?}"), Reason::UnderAMillisecond)),
        _ => Ok(()),
    }
}

/// The total of the parts of `text`, in milliseconds.
fn millis(text: &str) -> Result<u64, Reason> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(Reason::Empty);
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(Reason::ExpectedNumber(rest.to_owned()));
        }
        let (number, after) = rest.split_at(digits);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c.is_whitespace())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit = match unit {
            "" => return Err(missing_unit(number, after)),
            unit => unit_millis(unit).ok_or_else(|| Reason::NotAUnit(unit.to_owned()))?,
        };
        let too_large = || Reason::TooLarge(number.to_owned());
        let part = number
            .parse::<u64>()
            .ok()
            .and_then(|number| number.checked_mul(unit))
            .ok_or_else(too_large)?;
        total = total.checked_add(part).ok_or_else(too_large)?;
        rest = after.trim_start();
    }
    Ok(total)
}

fn unit_millis(unit: &str) -> Option<u64> {
    match unit {
        "ms" => Some(1),
        "s" => Some(1_000),
        "m" => Some(60_000),
        "h" => Some(3_600_000),
        "d" => Some(86_400_000),
        _ => None,
    }
}

/// Why `number` has no unit: a word after a space that is not a unit is named as such.
fn missing_unit(number: &str, after: &str) -> Reason {
    let word = after.trim_start();
    let word = &word[..word
        .find(|c: char| c.is_ascii_digit() || c.is_whitespace())
        .unwrap_or(word.len())];
    match word {
        word if !word.is_empty() && unit_millis(word).is_none() => {
            Reason::NotAUnit(word.to_owned())
        }
        _ => Reason::NoUnit(number.to_owned()),
    }
}

/// Writes a duration the way [`parse_duration`] reads it, largest units first, without
/// spaces: `1d12h`, `1h30m`, `500ms`, `0s`. Below a millisecond is dropped, and a
/// duration over `u64::MAX` milliseconds is written as that many.
pub fn format_duration(duration: Duration) -> String {
    let mut millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    if millis == 0 {
        return "0s".to_owned();
    }
    let mut text = String::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if millis >= size {
            text.push_str(&format!("{}{unit}", millis / size));
            millis %= size;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(text: &str) -> Result<Duration, String> {
        parse_duration(text, DurationUse::Interval).map_err(|error| error.message())
    }

    #[test]
    fn parts_add_up() {
        assert_eq!(interval("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(interval("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(interval(" 500ms "), Ok(Duration::from_millis(500)));
        assert_eq!(interval("1d1s"), Ok(Duration::from_secs(86_401)));
        assert_eq!(interval("2h2h"), Ok(Duration::from_secs(4 * 3600)));
        assert_eq!(interval("0h90s"), Ok(Duration::from_secs(90)));
        assert_eq!(interval("007s"), Ok(Duration::from_secs(7)));
        assert_eq!(interval("60d"), Ok(Duration::from_secs(60 * 86_400)));
        assert_eq!(
            interval("18446744073709551615ms"),
            Ok(Duration::from_millis(u64::MAX))
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let cases = [
            ("", "the interval is empty"),
            (" ", "the interval is empty"),
            ("m", "invalid interval `m`: expected a number at `m`"),
            ("-5s", "invalid interval `-5s`: expected a number at `-5s`"),
            (
                "1h -5s",
                "invalid interval `1h -5s`: expected a number at `-5s`",
            ),
            ("15", "invalid interval `15`: `15` has no unit"),
            (
                "15 m",
                "invalid interval `15 m`: write it without spaces: `15m`",
            ),
            (
                "1h30 m",
                "invalid interval `1h30 m`: write it without spaces: `1h30m`",
            ),
            (
                "15 parsecs",
                "invalid interval `15 parsecs`: `parsecs` is not a unit",
            ),
            ("1y", "invalid interval `1y`: `y` is not a unit"),
            ("5M", "invalid interval `5M`: `M` is not a unit"),
            ("0s", "invalid interval `0s`: it must be more than zero"),
            ("0h0m", "invalid interval `0h0m`: it must be more than zero"),
            (
                "18446744073709551616ms",
                "invalid interval `18446744073709551616ms`: `18446744073709551616` is too large",
            ),
            (
                "18446744073709552s",
                "invalid interval `18446744073709552s`: `18446744073709552` is too large",
            ),
            (
                "18446744073709551615ms1ms",
                "invalid interval `18446744073709551615ms1ms`: `1` is too large",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(interval(text), Err(message.to_owned()), "{text:?}");
        }
    }

    #[test]
    fn errors_name_the_use() {
        let error = parse_duration("5 minutes", DurationUse::Timeout).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid timeout `5 minutes`: `minutes` is not a unit (a timeout is numbers with \
             the units `ms`, `s`, `m`, `h` or `d`, such as `30s`, `5m` or `1h30m`)"
        );
        assert_eq!(error.text(), "5 minutes");
        let error = parse_duration("soon", DurationUse::Setting).unwrap_err();
        assert_eq!(
            error.message(),
            "invalid duration `soon`: expected a number at `soon`"
        );
        assert!(error.hint().starts_with("a duration is numbers"));
    }

    #[test]
    fn settings_may_be_zero() {
        assert_eq!(
            parse_duration("0s", DurationUse::Setting),
            Ok(Duration::ZERO)
        );
        assert!(parse_duration("0s", DurationUse::Timeout).is_err());
    }

    #[test]
    fn durations_given_in_code_follow_the_same_rules() {
        let check = |duration| {
            check_duration(duration, DurationUse::Interval).map_err(|error| error.message())
        };
        assert_eq!(check(Duration::from_millis(1)), Ok(()));
        assert_eq!(
            check(Duration::ZERO),
            Err("invalid interval `0s`: it must be more than zero".to_owned())
        );
        assert_eq!(
            check(Duration::from_micros(500)),
            Err("invalid interval `500µs`: it must be at least `1ms`".to_owned())
        );
        assert!(check(Duration::MAX).unwrap_err().ends_with("is too large"));
        assert_eq!(check_duration(Duration::ZERO, DurationUse::Setting), Ok(()));
    }

    #[test]
    fn formatted_durations_read_back() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1500), "1s500ms"),
            (Duration::from_secs(5400), "1h30m"),
            (Duration::from_secs(36 * 3600), "1d12h"),
            (Duration::from_micros(2_500), "2ms"),
        ];
        for (duration, text) in cases {
            assert_eq!(format_duration(duration), text);
            let back = parse_duration(text, DurationUse::Setting).unwrap();
            assert_eq!(back, Duration::from_millis(duration.as_millis() as u64));
        }
        let most = format_duration(Duration::MAX);
        assert_eq!(
            parse_duration(&most, DurationUse::Setting),
            Ok(Duration::from_millis(u64::MAX))
        );
    }
}
