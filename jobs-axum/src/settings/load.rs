//! Loading settings from a TOML file with `JOBS__…` environment variables over it.
//!
//! Both sources are merged into one tree first and deserialized once, so an unknown key
//! is caught by `deny_unknown_fields` whichever source it came from, and the error path
//! (from `serde_path_to_error`) is the full key. Environment values stay strings until
//! the field they land in asks for a type: `"12345"` is a number for `port` and a
//! string for `password`, never a number that was once a password.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::Path;

use serde::Deserializer;
use serde::de::value::MapDeserializer;
use serde::de::{self, IntoDeserializer, Unexpected, Visitor};

use super::{JobsSettings, SettingsError};

/// Environment variables that set settings start with this; `__` separates levels.
const ENV_PREFIX: &str = "JOBS__";
const ENV_SEPARATOR: &str = "__";

pub(super) fn load<K, V>(
    path: Option<&Path>,
    vars: impl IntoIterator<Item = (K, V)>,
) -> Result<JobsSettings, SettingsError>
where
    K: Into<OsString>,
    V: Into<OsString>,
{
    let file = match path {
        Some(path) => read_file(path)?,
        None => None,
    };
    let env = env_vars(vars)?;
    let origin = file.as_ref().map(|(origin, _)| origin.clone());
    let mut root = match &file {
        Some((origin, text)) => parse_toml(origin, text)?,
        None => BTreeMap::new(),
    };
    for var in &env {
        var.apply(&mut root)?;
    }
    let origin_of = |key: &str| {
        env.iter()
            .find(|var| var.concerns(key))
            .map(|var| var.name.clone())
            .or_else(|| origin.clone())
    };
    let locate = |error: SettingsError| {
        let origin = error.key().and_then(origin_of);
        error.with_origin(origin)
    };
    let settings = deserialize(Node::Table(root)).map_err(locate)?;
    settings.validate().map_err(locate)?;
    Ok(settings)
}

pub(super) fn from_toml(text: &str) -> Result<JobsSettings, SettingsError> {
    let settings = deserialize(Node::Table(parse_toml("TOML", text)?))?;
    settings.validate()?;
    Ok(settings)
}

/// The file's text, or `None` when there is no file at `path`.
fn read_file(path: &Path) -> Result<Option<(String, String)>, SettingsError> {
    let origin = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some((origin, text))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            tracing::debug!(path = %origin, "no settings file; using defaults and the environment");
            Ok(None)
        }
        Err(error) => Err(SettingsError::at_origin(
            origin,
            format!("cannot read: {error}"),
        )),
    }
}

fn parse_toml(origin: &str, text: &str) -> Result<BTreeMap<String, Node>, SettingsError> {
    let table = text
        .parse::<toml::Table>()
        .map_err(|error| SettingsError::at_origin(origin, error.to_string().trim_end()))?;
    Ok(Node::from_table(table))
}

fn deserialize(root: Node) -> Result<JobsSettings, SettingsError> {
    serde_path_to_error::deserialize(root).map_err(|error| {
        let key = error.path().to_string();
        let message = error.into_inner().0;
        if key == "." {
            SettingsError::at_origin("settings", message)
        } else {
            SettingsError::invalid(&key, message)
        }
    })
}

/// One `JOBS__…` variable: the key it sets and its value.
struct EnvVar {
    name: String,
    key: Vec<String>,
    value: String,
}

fn env_vars<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Result<Vec<EnvVar>, SettingsError>
where
    K: Into<OsString>,
    V: Into<OsString>,
{
    let mut found = Vec::new();
    for (name, value) in vars {
        let Ok(name) = name.into().into_string() else {
            continue;
        };
        let Some(path) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let key: Vec<String> = path.split(ENV_SEPARATOR).map(str::to_lowercase).collect();
        if key.iter().any(String::is_empty) {
            return Err(SettingsError::at_origin(
                name,
                "expected JOBS__ then key names separated by `__`, \
                 e.g. JOBS__DASHBOARD__PORT",
            ));
        }
        let value = value.into().into_string().map_err(|_| {
            SettingsError::invalid(&key.join("."), "the value is not valid UTF-8")
                .with_origin(Some(name.clone()))
        })?;
        found.push(EnvVar { name, key, value });
    }
    // Sorted, so a conflict between two variables is reported the same way every run.
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

impl EnvVar {
    /// Whether an error about `key` may be about this variable: it sets that key, a key
    /// inside it, or the table that holds it.
    fn concerns(&self, key: &str) -> bool {
        let own = self.key.join(".");
        own == key || own.starts_with(&format!("{key}.")) || key.starts_with(&format!("{own}."))
    }

    /// Sets the value in the tree, over whatever the file said.
    fn apply(&self, root: &mut BTreeMap<String, Node>) -> Result<(), SettingsError> {
        let (last, parents) = self.key.split_last().expect("keys have a segment");
        let mut table = root;
        for (depth, segment) in parents.iter().enumerate() {
            let child = table
                .entry(segment.clone())
                .or_insert_with(|| Node::Table(BTreeMap::new()));
            if let Node::Toml(_) = child {
                // The file's value is replaced by a table: the environment wins.
                *child = Node::Table(BTreeMap::new());
            }
            table = match child {
                Node::Table(inner) => inner,
                _ => {
                    return Err(SettingsError::invalid(
                        &self.key[..=depth].join("."),
                        format!(
                            "set as a value by another variable, so {} cannot set a key inside it",
                            self.name
                        ),
                    ));
                }
            };
        }
        table.insert(last.clone(), Node::Env(self.value.clone()));
        Ok(())
    }
}

/// A settings value before it is typed.
enum Node {
    Table(BTreeMap<String, Node>),
    /// A value from the TOML file, typed by TOML.
    Toml(toml::Value),
    /// A value from an environment variable, typed by the field it lands in.
    Env(String),
}

impl Node {
    fn from_table(table: toml::Table) -> BTreeMap<String, Node> {
        table
            .into_iter()
            .map(|(key, value)| {
                let node = match value {
                    toml::Value::Table(table) => Node::Table(Node::from_table(table)),
                    other => Node::Toml(other),
                };
                (key, node)
            })
            .collect()
    }
}

/// An error while typing the tree; `serde_path_to_error` adds the key.
#[derive(Debug)]
struct DeError(String);

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        DeError(message.to_string())
    }
}

impl From<toml::de::Error> for DeError {
    fn from(error: toml::de::Error) -> Self {
        DeError(error.message().to_owned())
    }
}

impl IntoDeserializer<'_, DeError> for Node {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

/// For each method: a TOML value deserializes as TOML says, an environment value is
/// parsed as the type asked for (or handed over as a string), a table is a map.
macro_rules! typed_by_field {
    ($($method:ident => $visit:ident($parsed:ty)),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            match self {
                Node::Env(text) => match text.trim().parse::<$parsed>() {
                    Ok(value) => visitor.$visit(value),
                    Err(_) => Err(de::Error::invalid_value(Unexpected::Str(&text), &visitor)),
                },
                Node::Toml(value) => Ok(value.$method(visitor)?),
                table => table.deserialize_any(visitor),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for Node {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Node::Table(table) => visitor.visit_map(MapDeserializer::new(table.into_iter())),
            Node::Toml(value) => Ok(value.deserialize_any(visitor)?),
            Node::Env(text) => visitor.visit_string(text),
        }
    }

    typed_by_field! {
        deserialize_bool => visit_bool(bool),
        deserialize_i8 => visit_i64(i64),
        deserialize_i16 => visit_i64(i64),
        deserialize_i32 => visit_i64(i64),
        deserialize_i64 => visit_i64(i64),
        deserialize_u8 => visit_u64(u64),
        deserialize_u16 => visit_u64(u64),
        deserialize_u32 => visit_u64(u64),
        deserialize_u64 => visit_u64(u64),
        deserialize_f32 => visit_f64(f64),
        deserialize_f64 => visit_f64(f64),
    }

    /// A list from the environment is its comma-separated items.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Node::Env(text) => visitor.visit_seq(de::value::SeqDeserializer::new(
                text.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(|item| Node::Env(item.to_owned())),
            )),
            other => other.deserialize_any(visitor),
        }
    }

    // A present key is `Some`: absent keys never reach the deserializer.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self {
            Node::Env(text) => visitor.visit_enum(text.into_deserializer()),
            Node::Toml(value) => Ok(value.deserialize_enum(name, variants, visitor)?),
            table => table.deserialize_any(visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct tuple tuple_struct map struct
        identifier ignored_any
    }
}
