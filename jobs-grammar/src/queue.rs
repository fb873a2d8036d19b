//! Queue names: short and plain, so that one reads the same in a URL, a metric label and
//! a log line.

use std::fmt;

/// The longest queue name, in characters.
pub const MAX_QUEUE_NAME: usize = 64;

const HINT: &str = "a queue name is 1 to 64 ASCII letters, digits, `_`, `.` or `-`, such as \
                    `llm` or `email.bulk`";

/// A queue name that is not valid, with what is wrong and how it should look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueNameError {
    name: String,
    reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Reason {
    Empty,
    /// The characters refused, each once, in the order they first appear.
    Refused(Vec<char>),
    TooLong(usize),
}

impl QueueNameError {
    /// The name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What is wrong: ``invalid queue name `llm queue/fast`: it contains ' ' and '/'``.
    pub fn message(&self) -> String {
        let reason = match &self.reason {
            Reason::Empty => return "the queue name is empty".to_owned(),
            Reason::Refused(refused) => {
                let mut listed: Vec<String> = refused.iter().map(|c| format!("{c:?}")).collect();
                let last = listed.pop().unwrap_or_default();
                if listed.is_empty() {
                    format!("it contains {last}")
                } else {
                    format!("it contains {} and {last}", listed.join(", "))
                }
            }
            Reason::TooLong(length) => {
                format!("it is {length} characters long, more than {MAX_QUEUE_NAME}")
            }
        };
        format!("invalid queue name `{}`: {reason}", self.name)
    }

    /// How a queue name is written.
    pub fn hint(&self) -> &'static str {
        HINT
    }
}

impl fmt::Display for QueueNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.hint())
    }
}

impl std::error::Error for QueueNameError {}

/// Checks a queue name: 1 to [`MAX_QUEUE_NAME`] ASCII letters, digits, `_`, `.` and `-`.
pub fn check_queue_name(name: &str) -> Result<(), QueueNameError> {
    let error = |reason| {
        Err(QueueNameError {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return error(Reason::Empty);
    }
    let mut refused: Vec<char> = Vec::new();
    for c in name.chars() {
        let allowed = c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        if !allowed && !refused.contains(&c) {
            refused.push(c);
        }
    }
    if !refused.is_empty() {
        return error(Reason::Refused(refused));
    }
    // All ASCII by now, so bytes are characters.
    if name.len() > MAX_QUEUE_NAME {
        return error(Reason::TooLong(name.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(name: &str) -> String {
        check_queue_name(name).unwrap_err().message()
    }

    #[test]
    fn queue_names_are_short_and_plain() {
        for name in ["llm", "email.bulk", "tenant_7-high", &"q".repeat(64)] {
            assert_eq!(check_queue_name(name), Ok(()), "{name}");
        }
        assert_eq!(
            message("llm queue/fast queue"),
            "invalid queue name `llm queue/fast queue`: it contains ' ' and '/'"
        );
        assert_eq!(
            message("a b/c\u{e9}"),
            "invalid queue name `a b/c\u{e9}`: it contains ' ', '/' and '\u{e9}'"
        );
        assert_eq!(
            message(&"q".repeat(65)),
            format!(
                "invalid queue name `{}`: it is 65 characters long, more than 64",
                "q".repeat(65)
            )
        );
        let error = check_queue_name("").unwrap_err();
        assert_eq!(error.message(), "the queue name is empty");
        assert_eq!(error.name(), "");
        assert!(error.to_string().ends_with(&format!("({HINT})")));
    }
}
