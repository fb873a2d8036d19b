//! `unique = "1h"`, with `unique_key = "…"` and `unique_states = "…"`: the window after
//! a job's creation in which an enqueue of the same arguments (or key) returns it, what
//! the key is made of, and which states of the first job count.

use syn::Ident;

use super::text::template;
use super::{Field, Text};
use crate::errors::Errors;
use crate::grammar;
use crate::settings::Setting;

/// The three options as written.
pub(super) struct Settings {
    pub(super) window: Option<Setting>,
    pub(super) key: Option<Setting>,
    pub(super) states: Option<Setting>,
}

/// How the job is unique, checked.
pub(crate) struct Unique {
    pub(crate) window_millis: u64,
    /// The key's template; the arguments when `None`.
    pub(crate) key: Option<Text>,
    /// The name of a `UniqueStates` variant; the runtime's default when `None`.
    pub(crate) states: Option<&'static str>,
}

/// The state groups `unique_states` takes, with the variant each names.
const STATES: [(&str, &str); 3] = [
    ("incomplete", "Incomplete"),
    ("successful", "Successful"),
    ("all", "All"),
];

pub(super) fn unique(
    settings: Settings,
    fn_ident: &Ident,
    fields: &[&Field],
    errors: &mut Errors,
) -> Option<Unique> {
    let Settings {
        window,
        key,
        states,
    } = settings;
    let Some(window) = window else {
        for setting in [key, states].into_iter().flatten() {
            errors.at(
                &setting.key,
                format_args!(
                    "`{}` goes with `unique = \"…\"`, the window in which an enqueue of the \
                     same arguments returns the first job, like `unique = \"1h\"`",
                    setting.key
                ),
            );
        }
        return None;
    };
    let key = key.map(|setting| {
        setting
            .string("tenant-{tenant_id}", errors)
            .and_then(|literal| template(literal, fn_ident, fields, errors))
    });
    let states = states.map(|setting| {
        let literal = setting.string("incomplete", errors)?;
        let name = literal.value();
        let found = STATES.iter().find(|(written, _)| *written == name);
        if found.is_none() {
            errors.at(
                &literal,
                format_args!(
                    "`{name}` is not a group of states\nhint: `unique_states` is \
                     `incomplete` (not finished), `successful` (not finished, or \
                     succeeded; the default) or `all`"
                ),
            );
        }
        found.map(|(_, variant)| *variant)
    });
    let literal = window.string("1h", errors)?;
    let window_millis = grammar::window_millis(&literal.value())
        .map_err(|message| errors.at(&literal, message))
        .ok()?;
    Some(Unique {
        window_millis,
        key: key.flatten(),
        states: states.flatten(),
    })
}
