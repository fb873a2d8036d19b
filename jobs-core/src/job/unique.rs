//! Unique jobs: an enqueue of the same job (by its arguments, or by a key made from
//! them) within a window after the first returns the first's id instead of storing a
//! second job.

use std::time::Duration;

use uuid::Uuid;

use crate::JobState;

/// How a job type (or one enqueue) is unique: `#[job(unique = "1h")]`.
///
/// An enqueue is a duplicate when a job of the same name and key was created less than
/// `window` ago and is in one of the counted [`UniqueStates`]; it then stores nothing
/// and answers that job's id. The key is the job's arguments (its payload, with object
/// keys sorted), or what `#[job(unique_key = "…")]` renders from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unique {
    window: Duration,
    states: UniqueStates,
}

impl Unique {
    /// Unique for `window` after the first job's creation, counting the jobs that did
    /// not fail or get deleted ([`UniqueStates::Successful`]).
    pub const fn within(window: Duration) -> Self {
        Self {
            window,
            states: UniqueStates::Successful,
        }
    }

    /// Counts the jobs in `states` only.
    pub const fn states(mut self, states: UniqueStates) -> Self {
        self.states = states;
        self
    }

    /// How long after its creation a job makes later enqueues duplicates.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Which jobs count.
    pub fn counted_states(&self) -> UniqueStates {
        self.states
    }
}

/// The states in which an earlier job makes an enqueue a duplicate (Oban's groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UniqueStates {
    /// Not finished: `Scheduled` (retries and sleeps included), `Enqueued`, `Processing`,
    /// `Awaiting`. Once the job ends, in any way, the same arguments make a new job.
    Incomplete,
    /// Not finished, or `Succeeded` (the default): a job that failed for good or was
    /// deleted lets the same arguments be enqueued again, a success within the window
    /// does not.
    #[default]
    Successful,
    /// Every state, `Failed` and `Deleted` included.
    All,
}

impl UniqueStates {
    /// Whether a job in `state` counts.
    pub fn counts(self, state: JobState) -> bool {
        match state {
            JobState::Scheduled
            | JobState::Enqueued
            | JobState::Processing
            | JobState::Awaiting => true,
            JobState::Succeeded => self != Self::Incomplete,
            JobState::Failed | JobState::Deleted => self == Self::All,
        }
    }
}

/// Namespace of the stored keys, so they never equal an id or another UUIDv5.
const UNIQUE_NAMESPACE: Uuid = Uuid::from_u128(0x6a6f_6273_2d75_6e69_8000_0000_0000_0002);

/// The stored key of a job named `name` whose key (rendered template, or canonical
/// arguments) is `key`: a UUIDv5, so a key of any length is one small index entry.
pub(crate) fn stored_key(name: &str, key: &str) -> Uuid {
    let mut text = String::with_capacity(name.len() + 1 + key.len());
    text.push_str(name);
    text.push('\n');
    text.push_str(key);
    Uuid::new_v5(&UNIQUE_NAMESPACE, text.as_bytes())
}

/// The arguments as one text that does not depend on the order of a map's entries:
/// JSON with every object's keys sorted. Equal arguments give equal text.
pub(crate) fn canonical_arguments(payload: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(payload) {
        Ok(value) => {
            let mut text = String::with_capacity(payload.len());
            write_canonical(&value, &mut text);
            text
        }
        // Every payload is JSON this crate wrote; keep it as it is otherwise.
        Err(_) => payload.to_owned(),
    }
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_arguments_sort_object_keys_at_every_depth() {
        assert_eq!(
            canonical_arguments(r#"{"b":1,"a":{"y":[{"d":1,"c":2}],"x":null}}"#),
            r#"{"a":{"x":null,"y":[{"c":2,"d":1}]},"b":1}"#
        );
        assert_eq!(canonical_arguments("null"), "null");
        assert_eq!(
            canonical_arguments(r#"{"a":1,"b":2}"#),
            canonical_arguments(r#"{"b":2,"a":1}"#)
        );
    }

    #[test]
    fn keys_differ_by_name_and_by_key() {
        assert_eq!(stored_key("a", "1"), stored_key("a", "1"));
        assert_ne!(stored_key("a", "1"), stored_key("b", "1"));
    }

    #[test]
    fn state_groups_count_as_documented() {
        use JobState::*;
        for state in [Scheduled, Enqueued, Processing, Awaiting] {
            assert!(UniqueStates::Incomplete.counts(state));
        }
        assert!(!UniqueStates::Incomplete.counts(Succeeded));
        assert!(UniqueStates::Successful.counts(Succeeded));
        assert!(!UniqueStates::Successful.counts(Failed));
        assert!(!UniqueStates::Successful.counts(Deleted));
        assert!(UniqueStates::All.counts(Deleted));
    }
}
