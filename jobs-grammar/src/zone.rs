//! Time zone names: the IANA names of chrono-tz (`UTC`, `Europe/Brussels`).

use std::fmt;
use std::str::FromStr;

use chrono_tz::{TZ_VARIANTS, Tz};

const HINT: &str = "expected an IANA name such as `Europe/Brussels`";

/// A time zone name that is not an IANA name, with the closest one if a name is close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneError {
    name: String,
    closest: Option<&'static str>,
}

impl ZoneError {
    /// The name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The zone whose name is within two edits of the one given, case aside.
    pub fn closest(&self) -> Option<&'static str> {
        self.closest
    }

    /// What is wrong: ``unknown time zone `Europe/Brusels`; did you mean `Europe/Brussels`?``.
    pub fn message(&self) -> String {
        if self.name.trim().is_empty() {
            return "the time zone is empty".to_owned();
        }
        let suggestion = self
            .closest
            .map(|zone| format!("; did you mean `{zone}`?"))
            .unwrap_or_default();
        format!("unknown time zone `{}`{suggestion}", self.name)
    }

    /// How a zone is written.
    pub fn hint(&self) -> &'static str {
        HINT
    }
}

impl fmt::Display for ZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.hint())
    }
}

impl std::error::Error for ZoneError {}

/// Reads a time zone name, exactly as the IANA database spells it (`UTC`,
/// `Europe/Brussels`, `America/Argentina/Buenos_Aires`). Offsets such as `+01:00` are
/// refused: a zone knows its daylight-saving changes, an offset does not.
pub fn parse_zone(name: &str) -> Result<Tz, ZoneError> {
    Tz::from_str(name).map_err(|_| ZoneError {
        name: name.to_owned(),
        closest: closest_zone(name),
    })
}

/// The zone whose name is within two edits of `name`, case aside.
fn closest_zone(name: &str) -> Option<&'static str> {
    if name.trim().is_empty() {
        return None;
    }
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
    fn iana_names_parse() {
        assert_eq!(parse_zone("UTC"), Ok(Tz::UTC));
        assert_eq!(parse_zone("Europe/Brussels"), Ok(Tz::Europe__Brussels));
        assert!(parse_zone("+01:00").is_err());
    }

    #[test]
    fn unknown_zones_get_the_closest_name() {
        for name in ["Europe/Brusels", "europe/brussels"] {
            let error = parse_zone(name).unwrap_err();
            assert_eq!(error.closest(), Some("Europe/Brussels"));
            assert_eq!(
                error.message(),
                format!("unknown time zone `{name}`; did you mean `Europe/Brussels`?")
            );
        }
        let error = parse_zone("Mars/Olympus").unwrap_err();
        assert_eq!(error.name(), "Mars/Olympus");
        assert_eq!(
            error.to_string(),
            "unknown time zone `Mars/Olympus` (expected an IANA name such as `Europe/Brussels`)"
        );
        assert_eq!(
            parse_zone(" ").unwrap_err().message(),
            "the time zone is empty"
        );
    }

    #[test]
    fn edit_distance_counts_chars() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("é", "e"), 1);
    }
}
