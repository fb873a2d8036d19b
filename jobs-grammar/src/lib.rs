//! The rules of the [`jobs`](https://docs.rs/jobs) crate for the strings people write:
//! durations (`every = "15m"`, `timeout = "5m"`, settings like `"36h"`), backoff policies
//! (`backoff = "exponential(2s, max = 1h)"`), cron expressions, time zone names, queue
//! names and rates (`rate = "50/1m"`).
//!
//! The macros check these strings at compile time and the runtime checks them again when
//! they arrive at run time (a schedule made in code, an agent's tool call, a settings
//! file); both call the functions here, so a string is refused in one place exactly when
//! it is refused in the other, with the same message. This crate is an implementation
//! detail of `jobs`, in the manner of `serde_derive_internals`: its API follows what
//! `jobs-macros` and `jobs-core` need.
//!
//! Every function is pure and returns a typed value or an error whose `Display` is one
//! line: what is wrong, then in parentheses how the string should look. The macros show
//! the same two parts on two lines, through the error's `message()` and `hint()`.
//!
//! ```
//! use std::time::Duration;
//! use jobs_grammar::{DurationUse, parse_duration};
//!
//! assert_eq!(parse_duration("1h 30m", DurationUse::Interval), Ok(Duration::from_secs(5400)));
//! let error = parse_duration("5 minutes", DurationUse::Timeout).unwrap_err();
//! assert_eq!(error.message(), "invalid timeout `5 minutes`: `minutes` is not a unit");
//! ```

mod backoff;
mod cron;
mod duration;
mod queue;
mod rate;
mod schema;
mod zone;

#[cfg(test)]
mod properties;

pub use backoff::{BackoffError, BackoffPolicy, parse_backoff};
pub use cron::{CronError, CronExpression, parse_cron};
pub use duration::{DurationError, DurationUse, check_duration, format_duration, parse_duration};
pub use queue::{MAX_QUEUE_NAME, QueueNameError, check_queue_name};
pub use rate::{Rate, RateError, parse_rate};
pub use schema::{MAX_SCHEMA_NAME, SchemaNameError, check_schema_name};
pub use zone::{ZoneError, parse_zone};
