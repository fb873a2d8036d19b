//! Durations as people write them, `15m` or `1h30m`: the `every` of `#[recurring]` and
//! the `timeout` of `#[job]`. The grammar is the runtime's `parse_interval`
//! (`jobs-core/src/schedule.rs`), written again here because a proc-macro crate cannot
//! depend on the runtime; `tests/macros/recurring.rs` checks that both accept the same
//! strings.

use std::time::Duration;

/// The option a duration is given for, which its errors name.
#[derive(Clone, Copy)]
pub(crate) enum Use {
    /// `every = "15m"`.
    Interval,
    /// `timeout = "5m"`.
    Timeout,
}

impl Use {
    fn noun(self) -> &'static str {
        match self {
            Self::Interval => "interval",
            Self::Timeout => "timeout",
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Self::Interval => {
                "an interval is numbers with the units `ms`, `s`, `m`, `h` or `d`, such as \
                 `15m`, `1h30m` or `90s`"
            }
            Self::Timeout => {
                "a timeout is numbers with the units `ms`, `s`, `m`, `h` or `d`, such as \
                 `30s`, `5m` or `1h30m`"
            }
        }
    }
}

/// Reads a duration the way the runtime's `parse_interval` does: `<number><unit>`
/// repeated, units `ms`, `s`, `m`, `h`, `d`, more than zero in total. The error says
/// what is wrong and how `text` should look.
pub(crate) fn parse(text: &str, used_as: Use) -> Result<Duration, String> {
    let noun = used_as.noun();
    let hint = used_as.hint();
    match parse_parts(text) {
        Ok(duration) => Ok(duration),
        Err(_) if text.trim().is_empty() => Err(format!("the {noun} is empty\nhint: {hint}")),
        Err(reason) => {
            let joined: String = text.split_whitespace().collect();
            let reason = match parse_parts(&joined) {
                Ok(_) => format!("write it without spaces: `{joined}`"),
                Err(_) => reason,
            };
            Err(format!("invalid {noun} `{text}`: {reason}\nhint: {hint}"))
        }
    }
}

fn parse_parts(text: &str) -> Result<Duration, String> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err("it is empty".to_owned());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("expected a number at `{rest}`"));
        }
        let (number, after) = rest.split_at(digits);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit = match unit {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            "" => return Err(format!("`{number}` has no unit")),
            unit => return Err(format!("`{}` is not a unit", unit.trim())),
        };
        let part = number
            .parse()
            .ok()
            .and_then(|number| unit.checked_mul(number))
            .and_then(|part| total.checked_add(part));
        total = part.ok_or_else(|| format!("`{number}` is too large"))?;
        rest = after;
    }
    if total.is_zero() {
        return Err("it must be more than zero".to_owned());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_are_pointed_out() {
        for (text, joined) in [("15 m", "15m"), ("1h 30m", "1h30m")] {
            let error = parse(text, Use::Interval).unwrap_err();
            assert!(
                error.contains(&format!("write it without spaces: `{joined}`")),
                "{error}"
            );
        }
        assert!(
            parse("15 parsecs", Use::Interval)
                .unwrap_err()
                .contains("`parsecs` is not a unit")
        );
    }

    #[test]
    fn errors_name_the_option() {
        let error = parse("5 minutes", Use::Timeout).unwrap_err();
        assert!(
            error.starts_with(
                "invalid timeout `5 minutes`: `minutes` is not a unit\nhint: a timeout"
            ),
            "{error}"
        );
        assert!(
            parse("", Use::Interval)
                .unwrap_err()
                .starts_with("the interval is empty\nhint: an interval")
        );
    }

    #[test]
    fn parts_add_up() {
        assert_eq!(parse_parts("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_parts(" 500ms "), Ok(Duration::from_millis(500)));
        assert_eq!(parse_parts("1d1s"), Ok(Duration::from_secs(86_401)));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let cases = [
            ("", "it is empty"),
            ("m", "expected a number at `m`"),
            ("-5s", "expected a number at `-5s`"),
            ("15", "`15` has no unit"),
            ("15 m", "`m` is not a unit"),
            ("15 parsecs", "`parsecs` is not a unit"),
            ("1y", "`y` is not a unit"),
            ("0s", "it must be more than zero"),
            ("0h0m", "it must be more than zero"),
            ("99999999999s", "`99999999999` is too large"),
            ("4294967296s", "`4294967296` is too large"),
        ];
        for (text, reason) in cases {
            let error = parse_parts(text).unwrap_err();
            assert!(error.starts_with(reason), "{text:?}: {error}");
        }
    }
}
