//! Rates per queue in the grammar of `queue_rate` (`"50/1m"`), for
//! `#[serde(with = "rates")]` on a map of queue names: a rate that does not read is an
//! error at load naming the setting's key with the queue (each value is read on its
//! own, so the loader's path reaches it).

use std::collections::BTreeMap;
use std::fmt;

use jobs_core::Rate;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serializer};

pub(super) fn serialize<S: Serializer>(
    rates: &BTreeMap<String, Rate>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(rates.iter().map(|(queue, rate)| (queue, rate.to_string())))
}

pub(super) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, Rate>, D::Error> {
    deserializer.deserialize_map(Rates)
}

struct Rates;

impl<'de> Visitor<'de> for Rates {
    type Value = BTreeMap<String, Rate>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a table of queue names and rates such as "50/1m""#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut rates = BTreeMap::new();
        while let Some((queue, OneRate(rate))) = map.next_entry::<String, OneRate>()? {
            rates.insert(queue, rate);
        }
        Ok(rates)
    }
}

/// One value of the map.
struct OneRate(Rate);

impl<'de> Deserialize<'de> for OneRate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(OneRateVisitor)
    }
}

struct OneRateVisitor;

impl Visitor<'_> for OneRateVisitor {
    type Value = OneRate;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a rate such as "50/1m" or "20/1s""#)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<OneRate, E> {
        jobs_grammar::parse_rate(text)
            .map(OneRate)
            .map_err(E::custom)
    }
}
