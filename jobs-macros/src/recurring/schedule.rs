//! The runtime's cron and zone rules (`parse_cron` and `parse_zone` in
//! `jobs-core/src/schedule.rs`) applied at compile time, with messages that say what to
//! fix. A proc-macro crate cannot depend on the runtime: cron expressions and zones go
//! through the same crates with the same settings, and `tests/macros/recurring.rs` checks
//! that both accept the same strings. Intervals are `crate::duration`'s.

use std::str::FromStr;

use chrono_tz::{TZ_VARIANTS, Tz};
use croner::errors::CronError;
use croner::parser::{CronParser, Seconds, Year};

const CRON_HINT: &str = "`minute hour day-of-month month day-of-week`, optionally with seconds \
                         first, such as `0 8 * * MON-FRI` or `30 0 8 * * *`";

const ZONE_HINT: &str = "expected an IANA name such as `Europe/Brussels`";

/// The fields of the 6-field form with their ranges; the 5-field form has no seconds.
const FIELDS: [(&str, &str); 6] = [
    ("second", "0-59"),
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day of month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("day of week", "0-7 or SUN-SAT"),
];

/// Checks a cron expression the way the runtime's `parse_cron` reads it.
pub(crate) fn cron(expression: &str) -> Result<(), String> {
    let Err(error) = parse_cron(expression) else {
        return Ok(());
    };
    let fields: Vec<&str> = expression.split_whitespace().collect();
    let reason = match error {
        _ if fields.is_empty() => {
            return Err(format!("the cron expression is empty\nhint: {CRON_HINT}"));
        }
        _ if fields.first() == Some(&"@every") => {
            "for an interval, write `every = \"15m\"` instead of `cron`".to_owned()
        }
        _ if !matches!(fields.len(), 5 | 6) => {
            format!("it has {} fields, not 5 or 6", fields.len())
        }
        error => bad_fields(&fields).unwrap_or_else(|| error.to_string()),
    };
    Err(format!(
        "invalid cron expression `{expression}`: {reason}\nhint: {CRON_HINT}"
    ))
}

fn parse_cron(expression: &str) -> Result<croner::Cron, CronError> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(expression)
}

/// What is wrong with each field that fails on its own (the others set to `*`).
fn bad_fields(fields: &[&str]) -> Option<String> {
    let names = &FIELDS[FIELDS.len() - fields.len()..];
    let bad: Vec<String> = fields
        .iter()
        .zip(names)
        .enumerate()
        .filter_map(|(i, (field, (name, range)))| {
            let alone: Vec<&str> = (0..fields.len())
                .map(|j| if j == i { field } else { "*" })
                .collect();
            let error = parse_cron(&alone.join(" ")).err()?;
            let problem = match error {
                CronError::ComponentError(message) if message.contains("out of bounds") => {
                    "is out of range".to_owned()
                }
                CronError::ComponentError(message) => {
                    format!(
                        "is invalid ({})",
                        message.trim_end_matches('.').to_lowercase()
                    )
                }
                _ => "is invalid".to_owned(),
            };
            Some(format!("{name} `{field}` {problem}, expected {range}"))
        })
        .collect();
    (!bad.is_empty()).then(|| bad.join("; "))
}

/// Checks a time zone name the way the runtime's `parse_zone` reads it.
pub(crate) fn zone(name: &str) -> Result<(), String> {
    if Tz::from_str(name).is_ok() {
        return Ok(());
    }
    if name.trim().is_empty() {
        return Err(format!("the time zone is empty\nhint: {ZONE_HINT}"));
    }
    let suggestion = closest_zone(name)
        .map(|zone| format!("; did you mean `{zone}`?"))
        .unwrap_or_default();
    Err(format!(
        "unknown time zone `{name}`{suggestion}\nhint: {ZONE_HINT}"
    ))
}

/// The zone whose name is within two edits of `name`, case aside.
fn closest_zone(name: &str) -> Option<&'static str> {
    let name = name.to_lowercase();
    TZ_VARIANTS
        .iter()
        .map(|zone| {
            (
                edit_distance(&name, &zone.name().to_lowercase()),
                zone.name(),
            )
        })
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, zone)| zone)
}

/// Levenshtein distance, in chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, a) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, b) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(a != *b);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_errors_name_the_field() {
        let error = cron("0 25 * * *").unwrap_err();
        assert!(
            error.starts_with(
                "invalid cron expression `0 25 * * *`: hour `25` is out of range, expected 0-23\n"
            ),
            "{error}"
        );
        let error = cron("61 0 8 * * MONDAY").unwrap_err();
        assert!(error.contains("second `61` is out of range"), "{error}");
        assert!(
            error.contains("; day of week `MONDAY` is invalid"),
            "{error}"
        );
        assert!(
            cron("0 8 * *")
                .unwrap_err()
                .contains("it has 4 fields, not 5 or 6")
        );
        assert!(
            cron("@every 5m")
                .unwrap_err()
                .contains("write `every = \"15m\"`")
        );
        assert!(
            cron(" ")
                .unwrap_err()
                .starts_with("the cron expression is empty\n")
        );
    }

    #[test]
    fn unknown_zones_get_the_closest_name() {
        assert!(
            zone("Europe/Brusels")
                .unwrap_err()
                .contains("did you mean `Europe/Brussels`?")
        );
        assert!(
            zone("europe/brussels")
                .unwrap_err()
                .contains("did you mean `Europe/Brussels`?")
        );
        assert!(!zone("Mars/Olympus").unwrap_err().contains("did you mean"));
    }
}
