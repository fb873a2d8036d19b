//! `concurrency_key = "…"` with `concurrency = n` and `rate = "10/1m"`: the key rendered
//! from a run's arguments, how many runs of one key may be running at once and how many
//! may start per period, across every server.

use syn::{Expr, ExprLit, Ident, Lit};

use super::text::template;
use super::{Field, Text};
use crate::errors::Errors;
use crate::grammar;
use crate::settings::Setting;

/// The job's partitioned limit, checked.
pub(crate) struct Concurrency {
    /// The key's template.
    pub(crate) key: Text,
    /// At least 1; 1 when neither it nor a rate is given (one at a time per key), `None`
    /// with a rate and no `concurrency` (any number at once).
    pub(crate) limit: Option<u32>,
    /// How many of one key may start per period: the count and the period in ms.
    pub(crate) rate: Option<(u32, u64)>,
}

/// The options of a partitioned limit, as written.
pub(super) struct Settings {
    pub(super) key: Option<Setting>,
    pub(super) limit: Option<Setting>,
    pub(super) rate: Option<Setting>,
}

pub(super) fn concurrency(
    settings: Settings,
    fn_ident: &Ident,
    fields: &[&Field],
    errors: &mut Errors,
) -> Option<Concurrency> {
    let Settings { key, limit, rate } = settings;
    let limit = limit.map(|setting| {
        let limit = whole_number(&setting.value, errors);
        (setting, limit)
    });
    let rate = rate.map(|setting| {
        let rate = setting.string("10/1m", errors).and_then(|literal| {
            grammar::rate(&literal.value())
                .map_err(|message| errors.at(&literal, message))
                .ok()
        });
        (setting, rate)
    });
    let Some(key) = key else {
        if let Some((setting, _)) = limit {
            errors.at(
                &setting.key,
                "`concurrency` goes with `concurrency_key = \"…\"`, the key whose jobs it \
                 limits, like `concurrency_key = \"tenant-{tenant_id}\"`",
            );
        }
        if let Some((setting, _)) = rate {
            errors.at(
                &setting.key,
                "`rate` is per concurrency key: it goes with `concurrency_key = \"…\"`, \
                 like `concurrency_key = \"tenant-{tenant_id}\", rate = \"10/1m\"`; to rate a \
                 whole queue, give the server `queue_rate(\"queue\", rate)`",
            );
        }
        return None;
    };
    let key = key
        .string("tenant-{tenant_id}", errors)
        .and_then(|literal| template(literal, fn_ident, fields, errors))?;
    let rate = match rate {
        Some((_, rate)) => Some(rate?),
        None => None,
    };
    let limit = match limit {
        Some((_, limit)) => Some(limit?),
        None if rate.is_some() => None,
        None => Some(1),
    };
    Some(Concurrency { key, limit, rate })
}

/// A whole number of at least 1.
fn whole_number(expr: &Expr, errors: &mut Errors) -> Option<u32> {
    let Expr::Lit(ExprLit {
        lit: Lit::Int(int), ..
    }) = expr
    else {
        errors.at(
            expr,
            "`concurrency` takes a whole number, like `concurrency = 1`: how many jobs of \
             one key run at once",
        );
        return None;
    };
    match int.base10_parse::<u32>() {
        Ok(0) => {
            errors.at(
                int,
                "`concurrency` must be at least 1: a key whose jobs may not run would never \
                 run them",
            );
            None
        }
        Ok(limit) => Some(limit),
        Err(error) => {
            errors.push(error);
            None
        }
    }
}
