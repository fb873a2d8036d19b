//! A bad setting, named by its key.

use std::fmt;

/// A setting that could not be read or is not valid. Its message starts with the full
/// key (``background_job_server.poll_interval: invalid duration `5 parsecs`: …``) and
/// ends with where the value came from (a file, or an environment variable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    key: Option<String>,
    message: String,
    origin: Option<String>,
}

impl SettingsError {
    pub(crate) fn invalid(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: Some(key.to_owned()),
            message: message.into(),
            origin: None,
        }
    }

    /// An error about a whole source (a file that cannot be read or parsed).
    pub(crate) fn at_origin(origin: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: None,
            message: message.into(),
            origin: Some(origin.into()),
        }
    }

    pub(crate) fn with_origin(mut self, origin: Option<String>) -> Self {
        if self.origin.is_none() {
            self.origin = origin;
        }
        self
    }

    /// The full key, dot-separated (`dashboard.port`); `None` when the error is about a
    /// whole file (unreadable, not TOML).
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// What is wrong, without the key.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where the value came from: the file's path or the environment variable's name.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.key, &self.origin) {
            (Some(key), Some(origin)) => write!(f, "{key}: {} (from {origin})", self.message),
            (Some(key), None) => write!(f, "{key}: {}", self.message),
            (None, Some(origin)) => write!(f, "{origin}: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for SettingsError {}
