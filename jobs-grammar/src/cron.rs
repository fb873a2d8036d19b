//! Cron expressions: the 5-field Unix form (`0 8 * * *`) or the 6-field form with seconds
//! first (`30 0 8 * * *`), read by croner.

use std::fmt;

use croner::Cron;
use croner::errors::CronError as CronerError;
use croner::parser::{CronParser, Seconds, Year};

const HINT: &str = "`minute hour day-of-month month day-of-week`, optionally with seconds \
                    first, such as `0 8 * * MON-FRI` or `30 0 8 * * *`";

/// The fields of the 6-field form with their ranges; the 5-field form has no seconds.
const FIELDS: [(&str, &str); 6] = [
    ("second", "0-59"),
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day of month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("day of week", "0-7 or SUN-SAT"),
];

/// A cron expression that parsed: its text as stored, and croner's reading of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpression {
    text: String,
    cron: Cron,
}

impl CronExpression {
    /// The expression without the spaces around it, as it is stored and shown.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// croner's reading of the expression, which finds its ticks.
    pub fn cron(&self) -> &Cron {
        &self.cron
    }

    /// The text as stored and croner's reading.
    pub fn into_parts(self) -> (String, Cron) {
        (self.text, self.cron)
    }
}

/// A cron expression that is not valid, with what is wrong and how it should look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError {
    expression: String,
    reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Reason {
    Empty,
    /// `@every 15m`: an interval written as a cron expression.
    Interval,
    FieldCount(usize),
    /// The fields that fail on their own, or croner's message when none does.
    Invalid(String),
}

impl CronError {
    /// The expression as given.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// What is wrong, naming the fields that are:
    /// ``invalid cron expression `0 25 * * *`: hour `25` is out of range, expected 0-23``.
    pub fn message(&self) -> String {
        let reason = match &self.reason {
            Reason::Empty => return "the cron expression is empty".to_owned(),
            Reason::Interval => {
                "for an interval, write `every = \"15m\"` instead of `cron`".to_owned()
            }
            Reason::FieldCount(count) => format!("it has {count} fields, not 5 or 6"),
            Reason::Invalid(reason) => reason.clone(),
        };
        format!("invalid cron expression `{}`: {reason}", self.expression)
    }

    /// How a cron expression is written.
    pub fn hint(&self) -> &'static str {
        HINT
    }
}

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.hint())
    }
}

impl std::error::Error for CronError {}

/// Reads a cron expression: the 5-field Unix form (`0 8 * * *`) or the 6-field form with
/// seconds first (`30 0 8 * * *`), with month and day names (`0 2 * * MON-FRI`, any
/// case), steps, ranges, lists, `L`, `W`, `#`, `?` and the nicknames (`@daily`). A 7th
/// (year) field is refused. Spaces around the expression are dropped.
pub fn parse_cron(expression: &str) -> Result<CronExpression, CronError> {
    match croner(expression) {
        Ok(cron) => Ok(CronExpression {
            text: expression.trim().to_owned(),
            cron,
        }),
        Err(error) => Err(CronError {
            expression: expression.to_owned(),
            reason: reason(expression, &error),
        }),
    }
}

/// croner with the settings of every cron expression in `jobs`.
fn croner(expression: &str) -> Result<Cron, CronerError> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(expression)
}

fn reason(expression: &str, error: &CronerError) -> Reason {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    match fields.len() {
        0 => Reason::Empty,
        _ if fields[0] == "@every" => Reason::Interval,
        5 | 6 => Reason::Invalid(bad_fields(&fields).unwrap_or_else(|| error.to_string())),
        count => Reason::FieldCount(count),
    }
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
            let error = croner(&alone.join(" ")).err()?;
            let problem = match error {
                CronerError::ComponentError(message) if message.contains("out of bounds") => {
                    "is out of range".to_owned()
                }
                CronerError::ComponentError(message) => {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn message(expression: &str) -> String {
        parse_cron(expression).unwrap_err().message()
    }

    #[test]
    fn both_forms_names_and_nicknames_parse() {
        for expression in [
            "0 8 * * *",
            "30 0 8 * * *",
            "0 2 * * MON-FRI",
            "0 2 * jan,jul sun",
            "*/15 9-17 * * *",
            "0 8 L * *",
            "0 8 * * 5#2",
            "0 8 15W * *",
            "0 8 ? * 7",
            "@daily",
            "@HOURLY",
        ] {
            assert!(parse_cron(expression).is_ok(), "{expression}");
        }
    }

    #[test]
    fn the_stored_text_is_trimmed() {
        let cron = parse_cron("  0 8 * * *  ").unwrap();
        assert_eq!(cron.as_str(), "0 8 * * *");
        assert_eq!(cron.into_parts().0, "0 8 * * *");
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            message("0 25 * * *"),
            "invalid cron expression `0 25 * * *`: hour `25` is out of range, expected 0-23"
        );
        let error = message("61 0 8 * * MONDAY");
        assert!(error.contains("second `61` is out of range"), "{error}");
        assert!(
            error.contains("; day of week `MONDAY` is invalid"),
            "{error}"
        );
        assert!(message("0 8 * *").ends_with(": it has 4 fields, not 5 or 6"));
        assert!(message("0 0 8 * * * 2026").ends_with(": it has 7 fields, not 5 or 6"));
        assert!(message("@every 5m").contains("write `every = \"15m\"`"));
        assert_eq!(message(" "), "the cron expression is empty");
    }

    #[test]
    fn display_carries_the_hint() {
        let error = parse_cron("0 8 * *").unwrap_err();
        assert_eq!(error.expression(), "0 8 * *");
        assert_eq!(error.to_string(), format!("{} ({HINT})", error.message()));
    }
}
