//! Durations written the human way (`"500ms"`, `"15s"`, `"36h"`, `"1h 30m"`), for
//! `#[serde(with = "duration")]`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

pub(super) fn serialize<S: Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_duration(*duration))
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
        humantime::parse_duration(text.trim())
            .map_err(|error| E::custom(format_args!("invalid duration {text:?}: {error}")))
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
    fn a_bad_duration_says_what_was_given() {
        let error = parse("5 parsecs").unwrap_err().to_string();
        assert!(
            error.starts_with(r#"invalid duration "5 parsecs": "#),
            "{error}"
        );
        let error = parse("15").unwrap_err().to_string();
        assert!(error.starts_with(r#"invalid duration "15": "#), "{error}");
    }
}
