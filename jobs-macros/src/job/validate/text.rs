//! The texts a run shows, its display name and its labels: templates whose placeholders
//! must name data parameters.

use syn::ext::IdentExt;
use syn::{Expr, ExprLit, Ident, Lit, LitStr};

use super::super::template::{self, Piece};
use super::{Field, Text};
use crate::errors::Errors;
use crate::settings::Setting;

/// Each label's template, checked like the display name's; an empty or repeated label is
/// an error.
pub(super) fn labels(
    setting: &Setting,
    fn_ident: &Ident,
    fields: &[&Field],
    errors: &mut Errors,
) -> Vec<Text> {
    let array = match &setting.value {
        Expr::Array(array) => array,
        Expr::Lit(ExprLit {
            lit: Lit::Str(label),
            ..
        }) => {
            errors.at(
                label,
                format_args!(
                    "`labels` takes an array of string literals: `labels = [{}]`",
                    label.token()
                ),
            );
            return Vec::new();
        }
        value => {
            errors.at(
                value,
                "`labels` takes an array of string literals, like \
                 `labels = [\"tenant-{tenant_id}\", \"llm\"]`",
            );
            return Vec::new();
        }
    };
    let mut seen: Vec<String> = Vec::new();
    let mut labels = Vec::new();
    for label in &array.elems {
        let Expr::Lit(ExprLit {
            lit: Lit::Str(literal),
            ..
        }) = label
        else {
            errors.at(
                label,
                "a label is a string literal, like `\"tenant-{tenant_id}\"` or `\"llm\"`",
            );
            continue;
        };
        let text = literal.value();
        if text.trim().is_empty() {
            errors.at(literal, "a label cannot be empty");
        } else if seen.contains(&text) {
            errors.at(literal, format_args!("the label `{text}` is given twice"));
        } else {
            labels.extend(template(literal.clone(), fn_ident, fields, errors));
            seen.push(text);
        }
    }
    labels
}

/// A display name or label template, each placeholder naming a data parameter.
pub(super) fn template(
    literal: LitStr,
    fn_ident: &Ident,
    fields: &[&Field],
    errors: &mut Errors,
) -> Option<Text> {
    let pieces = template::parse(&literal.value())
        .map_err(|message| errors.at(&literal, message))
        .ok()?;
    let mut known = true;
    for piece in &pieces {
        if let Piece::Field { name, .. } = piece
            && !fields.iter().any(|field| field.ident.unraw() == name)
        {
            known = false;
            let available = if fields.is_empty() {
                format!("`{fn_ident}` has no data parameters")
            } else {
                let names = fields
                    .iter()
                    .map(|field| format!("`{}`", field.ident.unraw()))
                    .collect::<Vec<_>>();
                format!("it can show {}", names.join(", "))
            };
            errors.at(
                &literal,
                format_args!("`{{{name}}}` is not a data parameter of `{fn_ident}`; {available}"),
            );
        }
    }
    if !known {
        return None;
    }
    // `template::parse` merges adjacent text, so a template without placeholders is
    // at most one piece.
    match pieces.as_slice() {
        [] => Some(Text::Plain(String::new())),
        [Piece::Text(text)] => Some(Text::Plain(text.clone())),
        _ => Some(Text::Template { literal, pieces }),
    }
}
