//! The rules of `jobs-grammar` for the strings of `#[job]` and `#[recurring]`, with
//! their errors laid out as compile errors: what is wrong, then a `hint:` line. The
//! runtime applies the same rules through the same crate, so a string compiles exactly
//! when the runtime would accept it.

use jobs_grammar::DurationUse;

/// What is wrong, then how it should look.
fn laid_out(message: String, hint: &str) -> String {
    format!("{message}\nhint: {hint}")
}

/// `every = "15m"`.
pub(crate) fn interval(text: &str) -> Result<(), String> {
    jobs_grammar::parse_duration(text, DurationUse::Interval)
        .map(drop)
        .map_err(|error| laid_out(error.message(), error.hint()))
}

/// `timeout = "5m"`, in milliseconds.
pub(crate) fn timeout_millis(text: &str) -> Result<u64, String> {
    jobs_grammar::parse_duration(text, DurationUse::Timeout)
        // The grammar keeps every duration within `u64::MAX` milliseconds.
        .map(|timeout| u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX))
        .map_err(|error| laid_out(error.message(), error.hint()))
}

/// `unique = "1h"`, in milliseconds.
pub(crate) fn window_millis(text: &str) -> Result<u64, String> {
    jobs_grammar::parse_duration(text, DurationUse::Window)
        // The grammar keeps every duration within `u64::MAX` milliseconds.
        .map(|window| u64::try_from(window.as_millis()).unwrap_or(u64::MAX))
        .map_err(|error| laid_out(error.message(), error.hint()))
}

/// `backoff = "exponential(2s, max = 1h)"`.
pub(crate) fn backoff(text: &str) -> Result<jobs_grammar::BackoffPolicy, String> {
    jobs_grammar::parse_backoff(text).map_err(|error| laid_out(error.message(), error.hint()))
}

/// `cron = "0 8 * * *"`.
pub(crate) fn cron(expression: &str) -> Result<(), String> {
    jobs_grammar::parse_cron(expression)
        .map(drop)
        .map_err(|error| laid_out(error.message(), error.hint()))
}

/// `zone = "Europe/Brussels"`.
pub(crate) fn zone(name: &str) -> Result<(), String> {
    jobs_grammar::parse_zone(name)
        .map(drop)
        .map_err(|error| laid_out(error.message(), error.hint()))
}

/// `rate = "10/1m"`: the count and the period in milliseconds. The period is at most a
/// day, as for a queue's rate: the claims keep a key's starts that long.
pub(crate) fn rate(text: &str) -> Result<(u32, u64), String> {
    let rate =
        jobs_grammar::parse_rate(text).map_err(|error| laid_out(error.message(), error.hint()))?;
    if rate.period > MAX_RATE_PERIOD {
        return Err(laid_out(
            format!("invalid rate `{text}`: its period is longer than a day"),
            "a rate's period is at most `1d`, such as `10/1m` or `1000/1d`",
        ));
    }
    // The grammar keeps every duration within `u64::MAX` milliseconds.
    Ok((
        rate.count,
        u64::try_from(rate.period.as_millis()).unwrap_or(u64::MAX),
    ))
}

/// The longest period of a rate, as the server allows for a queue's.
const MAX_RATE_PERIOD: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// `queue = "llm"`.
pub(crate) fn queue_name(name: &str) -> Result<(), String> {
    jobs_grammar::check_queue_name(name).map_err(|error| laid_out(error.message(), error.hint()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_a_hint_line() {
        assert_eq!(
            interval("1h 30 m").unwrap_err(),
            "invalid interval `1h 30 m`: write it without spaces: `1h30m`\nhint: an interval \
             is numbers with the units `ms`, `s`, `m`, `h` or `d`, such as `15m`, `1h30m` or \
             `90s`"
        );
        assert_eq!(timeout_millis("1h30m"), Ok(5_400_000));
        assert!(
            timeout_millis("5 minutes").unwrap_err().starts_with(
                "invalid timeout `5 minutes`: `minutes` is not a unit\nhint: a timeout"
            )
        );
        assert!(
            cron("0 25 * * *")
                .unwrap_err()
                .contains("\nhint: `minute hour")
        );
        assert!(
            zone("Mars/Olympus")
                .unwrap_err()
                .ends_with("\nhint: expected an IANA name such as `Europe/Brussels`")
        );
        assert_eq!(rate("10/1m"), Ok((10, 60_000)));
        assert_eq!(rate("1000/1d"), Ok((1000, 86_400_000)));
        assert!(rate("10/2d").unwrap_err().starts_with(
            "invalid rate `10/2d`: its period is longer than a day\nhint: a rate's period"
        ));
        assert!(
            rate("10 per minute")
                .unwrap_err()
                .starts_with("invalid rate `10 per minute`: it has no `/`")
        );
        assert!(
            queue_name("")
                .unwrap_err()
                .starts_with("the queue name is empty\nhint: ")
        );
    }
}
