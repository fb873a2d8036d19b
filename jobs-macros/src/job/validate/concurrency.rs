//! `concurrency_key = "…"` with `concurrency = n`: the key rendered from a run's
//! arguments, and how many runs of one key may be running at once across every server.

use syn::{Expr, ExprLit, Ident, Lit};

use super::text::template;
use super::{Field, Text};
use crate::errors::Errors;
use crate::settings::Setting;

/// The job's partitioned limit, checked.
pub(crate) struct Concurrency {
    /// The key's template.
    pub(crate) key: Text,
    /// At least 1; 1 when not given (one at a time per key).
    pub(crate) limit: u32,
}

pub(super) fn concurrency(
    key: Option<Setting>,
    limit: Option<Setting>,
    fn_ident: &Ident,
    fields: &[&Field],
    errors: &mut Errors,
) -> Option<Concurrency> {
    let limit = limit.map(|setting| {
        let limit = whole_number(&setting.value, errors);
        (setting, limit)
    });
    let Some(key) = key else {
        if let Some((setting, _)) = limit {
            errors.at(
                &setting.key,
                "`concurrency` goes with `concurrency_key = \"…\"`, the key whose jobs it \
                 limits, like `concurrency_key = \"tenant-{tenant_id}\"`",
            );
        }
        return None;
    };
    let key = key
        .string("tenant-{tenant_id}", errors)
        .and_then(|literal| template(literal, fn_ident, fields, errors))?;
    let limit = match limit {
        Some((_, limit)) => limit?,
        None => 1,
    };
    Some(Concurrency { key, limit })
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
