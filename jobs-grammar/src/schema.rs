//! PostgreSQL schema names for the library's tables: plain lowercase identifiers, so
//! they need no quoting anywhere and read the same in every tool.

use std::fmt;

/// The longest schema name PostgreSQL keeps whole (`NAMEDATALEN - 1` bytes).
pub const MAX_SCHEMA_NAME: usize = 63;

/// A schema name [`check_schema_name`] refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaNameError {
    name: String,
}

impl fmt::Display for SchemaNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a schema name this library uses: give 1 to {MAX_SCHEMA_NAME} \
             lowercase letters, digits and `_`, not starting with a digit or `pg_`",
            self.name
        )
    }
}

impl std::error::Error for SchemaNameError {}

/// Checks a schema name: 1 to [`MAX_SCHEMA_NAME`] lowercase ASCII letters, digits and
/// `_`, not starting with a digit, and not `pg_…` (PostgreSQL keeps those for itself).
pub fn check_schema_name(name: &str) -> Result<(), SchemaNameError> {
    let plain = name
        .bytes()
        .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_');
    let first = name.bytes().next();
    let ok = plain
        && first.is_some_and(|byte| !byte.is_ascii_digit())
        && name.len() <= MAX_SCHEMA_NAME
        && !name.starts_with("pg_");
    if ok {
        Ok(())
    } else {
        Err(SchemaNameError {
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lowercase_identifiers_pass_and_others_are_refused() {
        for good in ["billing", "app_2", "_jobs", &"a".repeat(63)] {
            assert_eq!(check_schema_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "Billing",
            "2app",
            "pg_jobs",
            "a-b",
            "a b",
            "app\"",
            &"a".repeat(64),
        ] {
            let error = check_schema_name(bad).unwrap_err();
            assert!(
                error.to_string().contains("not a schema name"),
                "{bad}: {error}"
            );
        }
    }
}
