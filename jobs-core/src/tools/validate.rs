//! Checks tool arguments against the JSON Schema of a job's data: the subset `schemars`
//! emits (`type`, `properties`, `required`, `additionalProperties`, `enum`, `const`,
//! `items`, `prefixItems`, `anyOf`/`oneOf`, `$ref` to `$defs`, integer and length
//! bounds), with the first mismatch reported as the field, what it expected and what it got.
//!
//! Written here rather than taken from the `jsonschema` crate: that crate pulls in a
//! regex engine and an HTTP client for remote `$ref`s, and its messages speak JSON Schema,
//! while a model correcting its call needs "expected an integer" on `/user_id`.

use serde_json::{Map, Value};

/// Where and how arguments miss their schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mismatch {
    /// A JSON Pointer to the value, `""` for the whole arguments.
    pub(crate) field: String,
    pub(crate) expected: String,
    /// The value as JSON, shortened; `None` for a missing field.
    pub(crate) got: Option<String>,
    /// A field the schema does not have: serde would ignore it, but a model that sends
    /// one has most likely misnamed an argument.
    pub(crate) unknown: bool,
}

/// The first place `value` does not match `schema`; `root` resolves `$ref`s.
pub(crate) fn validate(root: &Value, value: &Value) -> Result<(), Mismatch> {
    check(root, root, value, "")
}

fn check(root: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), Mismatch> {
    let schema = match schema {
        Value::Bool(true) => return Ok(()),
        Value::Bool(false) => return Err(mismatch(at, "nothing here", value)),
        Value::Object(schema) => schema,
        _ => return Ok(()),
    };
    if let Some(Value::String(reference)) = schema.get("$ref") {
        let target = reference
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer))
            .ok_or_else(|| mismatch(at, "a schema the catalog can resolve", value))?;
        check(root, target, value, at)?;
    }
    if let Some(Value::Array(options)) = schema.get("anyOf").or_else(|| schema.get("oneOf")) {
        let results: Vec<_> = options
            .iter()
            .map(|option| check(root, option, value, at))
            .collect();
        if !results.iter().any(Result::is_ok) {
            // One alternative that fits the value's type says more than "one of …".
            let same_type: Vec<_> = results
                .into_iter()
                .filter_map(Result::err)
                .filter(|error| error.field != at)
                .collect();
            if let [only] = same_type.as_slice() {
                return Err(only.clone());
            }
            let expected = options
                .iter()
                .map(|option| describe(root, option))
                .collect::<Vec<_>>()
                .join(" or ");
            return Err(mismatch(at, &expected, value));
        }
    }
    if let Some(Value::Array(all)) = schema.get("allOf") {
        for part in all {
            check(root, part, value, at)?;
        }
    }
    if let Some(expected) = schema.get("const")
        && expected != value
    {
        return Err(mismatch(at, &format!("exactly {expected}"), value));
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(value)
    {
        let listed = allowed.iter().map(Value::to_string).collect::<Vec<_>>();
        return Err(mismatch(
            at,
            &format!("one of {}", listed.join(", ")),
            value,
        ));
    }
    if let Some(types) = schema.get("type") {
        let fits = match types {
            Value::String(name) => has_type(name, value),
            Value::Array(names) => names
                .iter()
                .filter_map(Value::as_str)
                .any(|name| has_type(name, value)),
            _ => true,
        };
        if !fits {
            return Err(mismatch(at, &type_phrase(types), value));
        }
    }
    match value {
        Value::Number(number) => check_number(schema, number, value, at),
        Value::String(text) => check_length(schema, text.chars().count(), "characters", value, at),
        Value::Array(items) => check_array(root, schema, items, value, at),
        Value::Object(object) => check_object(root, schema, object, at),
        Value::Null | Value::Bool(_) => Ok(()),
    }
}

fn check_number(
    schema: &Map<String, Value>,
    number: &serde_json::Number,
    value: &Value,
    at: &str,
) -> Result<(), Mismatch> {
    let integer = number
        .as_i64()
        .map(i128::from)
        .or_else(|| number.as_u64().map(i128::from));
    let range = schema
        .get("format")
        .and_then(Value::as_str)
        .and_then(integer_range);
    if let (Some(integer), Some((low, high))) = (integer, range)
        && !(low..=high).contains(&integer)
    {
        return Err(mismatch(
            at,
            &format!("an integer from {low} to {high}"),
            value,
        ));
    }
    let Some(number) = number.as_f64() else {
        return Ok(());
    };
    let minimum = schema.get("minimum").and_then(Value::as_f64);
    let maximum = schema.get("maximum").and_then(Value::as_f64);
    if minimum.is_some_and(|minimum| number < minimum)
        || maximum.is_some_and(|maximum| number > maximum)
    {
        let expected = match (minimum, maximum) {
            (Some(minimum), Some(maximum)) => format!("a number from {minimum} to {maximum}"),
            (Some(minimum), None) => format!("a number of at least {minimum}"),
            (None, Some(maximum)) => format!("a number of at most {maximum}"),
            (None, None) => unreachable!("a bound was broken"),
        };
        return Err(mismatch(at, &expected, value));
    }
    Ok(())
}

/// The range of an integer `format` as schemars writes it for Rust's integer types,
/// which bounds some (`uint32`) with a `minimum` only: serde refuses what they cannot
/// hold, so the check must too.
fn integer_range(format: &str) -> Option<(i128, i128)> {
    Some(match format {
        "int8" => (i8::MIN.into(), i8::MAX.into()),
        "int16" => (i16::MIN.into(), i16::MAX.into()),
        "int32" => (i32::MIN.into(), i32::MAX.into()),
        "int64" | "int" => (i64::MIN.into(), i64::MAX.into()),
        "uint8" => (0, u8::MAX.into()),
        "uint16" => (0, u16::MAX.into()),
        "uint32" => (0, u32::MAX.into()),
        "uint64" | "uint" => (0, u64::MAX.into()),
        _ => return None,
    })
}

fn check_length(
    schema: &Map<String, Value>,
    length: usize,
    unit: &str,
    value: &Value,
    at: &str,
) -> Result<(), Mismatch> {
    let (min_key, max_key) = if unit == "items" {
        ("minItems", "maxItems")
    } else {
        ("minLength", "maxLength")
    };
    let length = length as u64;
    if let Some(min) = schema.get(min_key).and_then(Value::as_u64)
        && length < min
    {
        return Err(mismatch(at, &format!("at least {min} {unit}"), value));
    }
    if let Some(max) = schema.get(max_key).and_then(Value::as_u64)
        && length > max
    {
        return Err(mismatch(at, &format!("at most {max} {unit}"), value));
    }
    Ok(())
}

fn check_array(
    root: &Value,
    schema: &Map<String, Value>,
    items: &[Value],
    value: &Value,
    at: &str,
) -> Result<(), Mismatch> {
    check_length(schema, items.len(), "items", value, at)?;
    let prefix = match schema.get("prefixItems") {
        Some(Value::Array(prefix)) => prefix.as_slice(),
        _ => &[],
    };
    for (index, item) in items.iter().enumerate() {
        let item_schema = prefix.get(index).or_else(|| schema.get("items"));
        if let Some(item_schema) = item_schema {
            check(root, item_schema, item, &format!("{at}/{index}"))?;
        }
    }
    Ok(())
}

fn check_object(
    root: &Value,
    schema: &Map<String, Value>,
    object: &Map<String, Value>,
    at: &str,
) -> Result<(), Mismatch> {
    let properties = schema.get("properties").and_then(Value::as_object);
    if let Some(Value::Array(required)) = schema.get("required") {
        for name in required.iter().filter_map(Value::as_str) {
            if !object.contains_key(name) {
                let expected = properties
                    .and_then(|properties| properties.get(name))
                    .map_or_else(|| "a value".to_owned(), |field| describe(root, field));
                return Err(Mismatch {
                    field: pointer(at, name),
                    expected,
                    got: None,
                    unknown: false,
                });
            }
        }
    }
    for (name, field) in object {
        match properties.and_then(|properties| properties.get(name)) {
            Some(field_schema) => check(root, field_schema, field, &pointer(at, name))?,
            None => match schema.get("additionalProperties") {
                Some(Value::Bool(false)) => {
                    let known = properties
                        .map(|properties| {
                            properties
                                .keys()
                                .map(|key| format!("`{key}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default();
                    return Err(Mismatch {
                        unknown: true,
                        ..mismatch(
                            &pointer(at, name),
                            &format!("one of the fields {known}"),
                            field,
                        )
                    });
                }
                Some(extra) => check(root, extra, field, &pointer(at, name))?,
                None => {}
            },
        }
    }
    Ok(())
}

/// Whether `value` is of JSON Schema type `name`, the way serde_json decodes it: an
/// integer is a number without a fraction part (`7`, not `7.0`).
fn has_type(name: &str, value: &Value) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        _ => true,
    }
}

fn type_phrase(types: &Value) -> String {
    let one = |name: &str| match name {
        "null" => "null",
        "boolean" => "true or false",
        "string" => "a string",
        "array" => "an array",
        "object" => "an object",
        "number" => "a number",
        "integer" => "an integer",
        _ => "a value",
    };
    match types {
        Value::String(name) => one(name).to_owned(),
        Value::Array(names) => names
            .iter()
            .filter_map(Value::as_str)
            .map(one)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "a value".to_owned(),
    }
}

/// What a schema asks for, in a few words.
fn describe(root: &Value, schema: &Value) -> String {
    let Some(object) = schema.as_object() else {
        return "a value".to_owned();
    };
    if let Some(Value::String(reference)) = object.get("$ref")
        && let Some(target) = reference.strip_prefix('#').and_then(|p| root.pointer(p))
    {
        return describe(root, target);
    }
    if let Some(Value::Array(allowed)) = object.get("enum") {
        let listed = allowed.iter().map(Value::to_string).collect::<Vec<_>>();
        return format!("one of {}", listed.join(", "));
    }
    if let Some(expected) = object.get("const") {
        return format!("exactly {expected}");
    }
    if let Some(types) = object.get("type") {
        return type_phrase(types);
    }
    if let Some(Value::Array(options)) = object.get("anyOf").or_else(|| object.get("oneOf")) {
        return options
            .iter()
            .map(|option| describe(root, option))
            .collect::<Vec<_>>()
            .join(" or ");
    }
    "a value".to_owned()
}

fn pointer(at: &str, name: &str) -> String {
    format!("{at}/{}", name.replace('~', "~0").replace('/', "~1"))
}

fn mismatch(at: &str, expected: &str, value: &Value) -> Mismatch {
    Mismatch {
        field: at.to_owned(),
        expected: expected.to_owned(),
        got: Some(shorten(value.to_string())),
        unknown: false,
    }
}

fn shorten(mut text: String) -> String {
    const MAX: usize = 200;
    if text.len() > MAX {
        let mut end = MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::validate;

    #[test]
    fn reports_the_field_and_what_it_expected() {
        let schema = json!({
            "type": "object",
            "properties": {
                "user_id": {"type": "integer", "minimum": 0},
                "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}},
                "note": {"type": ["string", "null"]},
            },
            "required": ["user_id"],
            "additionalProperties": false,
            "$defs": {"Tag": {"type": "string", "enum": ["a", "b"]}},
        });
        assert!(validate(&schema, &json!({"user_id": 7, "tags": ["a"], "note": null})).is_ok());
        let error = validate(&schema, &json!({"user_id": "seven"})).unwrap_err();
        assert_eq!(error.field, "/user_id");
        assert_eq!(error.expected, "an integer");
        assert_eq!(error.got.as_deref(), Some("\"seven\""));
        assert_eq!(
            validate(&schema, &json!({"user_id": 7.0}))
                .unwrap_err()
                .field,
            "/user_id"
        );
        assert_eq!(
            validate(&schema, &json!({"user_id": -1}))
                .unwrap_err()
                .field,
            "/user_id"
        );
        let error = validate(&schema, &json!({"user_id": 1, "tags": ["c"]})).unwrap_err();
        assert_eq!(
            (error.field.as_str(), error.expected.as_str()),
            ("/tags/0", "one of \"a\", \"b\"")
        );
        // Found by a property test: schemars bounds `u32` by its `format` alone.
        let counted = json!({"type": "integer", "format": "uint32", "minimum": 0});
        assert!(validate(&counted, &json!(4_294_967_295u64)).is_ok());
        let error = validate(&counted, &json!(4_294_967_296u64)).unwrap_err();
        assert_eq!(error.expected, "an integer from 0 to 4294967295");
        let error = validate(&schema, &json!({})).unwrap_err();
        assert_eq!((error.field.as_str(), error.got), ("/user_id", None));
        assert_eq!(
            validate(&schema, &json!({"user_id": 1, "x": 1}))
                .unwrap_err()
                .field,
            "/x"
        );
    }
}
