//! Durations in the grammar of `#[job(timeout = …)]` and `#[recurring(every = …)]`
//! (`"500ms"`, `"15s"`, `"36h"`, `"1h 30m"`), for `#[serde(with = "duration")]`. Unlike
//! a timeout or an interval, a setting may be zero: each setting that needs more says
//! so in `JobsSettings::validate`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

pub(super) fn serialize<S: Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&jobs_grammar::format_duration(*duration))
}

pub(super) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    deserializer.deserialize_str(HumanDuration)
}

/// For `Option<Duration>` fields, which are simply left out when unset.
pub(super) mod option {
    use super::*;

    pub(in crate::settings) fn serialize<S: Serializer>(
        duration: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => super::serialize(duration, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(in crate::settings) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        super::deserialize(deserializer).map(Some)
    }
}

struct HumanDuration;

impl Visitor<'_> for HumanDuration {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a duration such as "500ms", "15s" or "36h""#)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        jobs_grammar::parse_duration(text, jobs_grammar::DurationUse::Setting).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::IntoDeserializer;
    use serde::de::value::{Error, StrDeserializer};

    fn parse(text: &str) -> Result<Duration, Error> {
        let deserializer: StrDeserializer<'_, Error> = text.into_deserializer();
        deserialize(deserializer)
    }

    #[test]
    fn reads_the_human_forms() {
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("15s").unwrap(), Duration::from_secs(15));
        assert_eq!(parse("36h").unwrap(), Duration::from_secs(36 * 3600));
        assert_eq!(parse("1h 30m").unwrap(), Duration::from_secs(5400));
    }

    #[test]
    fn zero_is_a_duration() {
        assert_eq!(parse("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn a_bad_duration_says_what_was_given() {
        let error = parse("5 parsecs").unwrap_err().to_string();
        assert!(
            error.starts_with("invalid duration `5 parsecs`: `parsecs` is not a unit ("),
            "{error}"
        );
        let error = parse("15").unwrap_err().to_string();
        assert!(
            error.starts_with("invalid duration `15`: `15` has no unit ("),
            "{error}"
        );
    }

    #[test]
    fn what_is_written_reads_back() {
        for duration in [
            Duration::ZERO,
            Duration::from_millis(500),
            Duration::from_secs(36 * 3600),
            Duration::from_secs(5400),
        ] {
            let written = serialize(&duration, serde_json::value::Serializer).unwrap();
            let written = written.as_str().unwrap();
            assert_eq!(parse(written).unwrap(), duration, "{written}");
        }
    }
}
