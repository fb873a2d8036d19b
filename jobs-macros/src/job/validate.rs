//! Judges what `attr` and `input` read and builds the [`Job`] that `expand` emits, with
//! one error per mistake on the token that is wrong.

use proc_macro2::Span;
use quote::format_ident;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, Ident, Lit, LitStr, Pat, Path, ReturnType, Type, Visibility};

use super::Macro;
use super::attr::Options;
use super::input::{JobFn, Param};
use super::template::{self, Piece};
use crate::errors::Errors;

/// Everything the expansion needs, checked.
pub(crate) struct Job {
    /// The path of the `jobs` crate: `::jobs` unless `crate = "…"` says otherwise.
    pub(crate) root: Path,
    pub(crate) vis: Visibility,
    pub(crate) fn_ident: Ident,
    pub(crate) struct_ident: Ident,
    /// The fn's `///` lines, repeated on the struct.
    pub(crate) docs: Vec<Attribute>,
    /// The fn's parameters in its order.
    pub(crate) args: Vec<Arg>,
    /// Where an unfit return type or a future that is not `Send` is reported.
    pub(crate) output_span: Span,
    /// The registered name if pinned; `module_path!()::fn_name` otherwise.
    pub(crate) id: Option<LitStr>,
    pub(crate) retries: Option<u32>,
    pub(crate) display: DisplayName,
}

pub(crate) enum Arg {
    Injected(Type),
    Data(Field),
}

/// A data parameter, as a field of the job's struct.
pub(crate) struct Field {
    pub(crate) ident: Ident,
    pub(crate) ty: Type,
    pub(crate) docs: Vec<Attribute>,
    pub(crate) serde: Vec<Attribute>,
}

pub(crate) enum DisplayName {
    /// Shown as is: the fn's name, or a template without placeholders.
    Plain(String),
    /// A template with placeholders, each naming a field.
    Template { literal: LitStr, pieces: Vec<Piece> },
}

impl Job {
    pub(crate) fn fields(&self) -> impl Iterator<Item = &Field> {
        fields(&self.args)
    }
}

fn fields(args: &[Arg]) -> impl Iterator<Item = &Field> {
    args.iter().filter_map(|arg| match arg {
        Arg::Data(field) => Some(field),
        Arg::Injected(_) => None,
    })
}

/// Checks the fn and the options. Returns `None` when the fn itself cannot be a job;
/// a bad option only adds an error and falls back to its default, so the struct is
/// still generated and code that uses it does not fail as well.
pub(crate) fn validate(
    options: Options,
    input: &JobFn,
    written: Macro,
    errors: &mut Errors,
) -> Option<Job> {
    let sig = &input.item.sig;
    let mut unfit = Errors::default();
    if sig.asyncness.is_none() {
        unfit.at(sig.fn_token, format_args!("{written} needs an `async fn`"));
    }
    if let Some(unsafety) = sig.unsafety {
        unfit.at(
            unsafety,
            format_args!("{written} cannot run an `unsafe fn`"),
        );
    }
    if !sig.generics.params.is_empty() {
        unfit.at(
            &sig.generics,
            format_args!(
                "a {written} fn cannot be generic: a job is registered and decoded under one \
                 name, so its types must be known"
            ),
        );
    } else if let Some(where_clause) = &sig.generics.where_clause {
        unfit.at(
            where_clause,
            format_args!("a {written} fn cannot have a `where` clause"),
        );
    }
    let args = input
        .params
        .iter()
        .filter_map(|param| arg(param, written, &mut unfit))
        .collect::<Vec<_>>();

    let struct_ident = struct_ident(&sig.ident, &mut unfit);
    let fit = unfit.is_empty();
    errors.extend(unfit);

    let data: Vec<&Field> = fields(&args).collect();
    let retries = options
        .retries
        .and_then(|setting| retries(&setting.value, errors));
    let display = options
        .name
        .and_then(|setting| setting.string("Send reminder to {user_id}", errors))
        .and_then(|literal| template(literal, &sig.ident, &data, errors))
        .unwrap_or_else(|| DisplayName::Plain(sig.ident.unraw().to_string()));
    let id = options
        .id
        .and_then(|setting| setting.string("reminders.send", errors))
        .filter(|id| {
            let empty = id.value().trim().is_empty();
            if empty {
                errors.at(id, "the `id` of a job cannot be empty");
            }
            !empty
        });
    let root = options
        .krate
        .and_then(|setting| setting.string("my_jobs", errors))
        .and_then(|path| crate_path(&path, errors))
        .unwrap_or_else(|| syn::parse_quote!(::jobs));

    if !fit {
        return None;
    }
    let docs = input
        .item
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"));
    Some(Job {
        root,
        vis: input.item.vis.clone(),
        fn_ident: sig.ident.clone(),
        struct_ident: struct_ident?,
        docs: docs.cloned().collect(),
        output_span: match &sig.output {
            ReturnType::Type(_, ty) => ty.span(),
            ReturnType::Default => sig.ident.span(),
        },
        args,
        id,
        retries,
        display,
    })
}

fn arg(param: &Param, written: Macro, errors: &mut Errors) -> Option<Arg> {
    let data = match param {
        Param::Receiver(receiver) => {
            errors.at(
                receiver,
                format_args!(
                    "{written} needs a free fn: a job cannot take `self`; \
                     take what it needs as `State<…>` or as data parameters"
                ),
            );
            return None;
        }
        Param::Injected(ty) => return Some(Arg::Injected(ty.clone())),
        Param::Data(data) => data,
    };
    let ident = match &data.pat {
        Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => Some(pat.ident.clone()),
        pat => {
            errors.at(
                pat,
                "a data parameter needs a plain name, like `user_id: u64`: it becomes a field \
                 of the job's struct (only `JobContext` and `State<…>` parameters take patterns)",
            );
            None
        }
    };
    let owned = match &data.ty {
        Type::Reference(reference) => {
            errors.at(
                reference,
                "a data parameter is stored with the job, so it must own its value: \
                 take `String` rather than `&str`, `Vec<T>` rather than `&[T]`",
            );
            false
        }
        Type::ImplTrait(impl_trait) => {
            errors.at(
                impl_trait,
                format_args!(
                    "a {written} fn cannot be generic: a data parameter needs a concrete type \
                     to be decoded"
                ),
            );
            false
        }
        _ => true,
    };
    let (Some(ident), true) = (ident, owned) else {
        return None;
    };
    Some(Arg::Data(Field {
        ident,
        ty: data.ty.clone(),
        docs: data.docs.clone(),
        serde: data.serde.clone(),
    }))
}

/// The struct's name: the fn's, in PascalCase.
fn struct_ident(fn_ident: &Ident, errors: &mut Errors) -> Option<Ident> {
    let fn_name = fn_ident.unraw().to_string();
    let name = pascal_case(&fn_name);
    if name == fn_name {
        errors.at(
            fn_ident,
            format_args!(
                "the job's struct is named after the fn in PascalCase, which `{fn_name}` \
                 already is; name the fn in snake_case"
            ),
        );
        return None;
    }
    match syn::parse_str::<Ident>(&name) {
        Ok(_) => Some(format_ident!("{name}", span = fn_ident.span())),
        Err(_) => {
            errors.at(
                fn_ident,
                format_args!("the job's struct would be named `{name}`, which is not a type name"),
            );
            None
        }
    }
}

/// `send_reminder` → `SendReminder`.
fn pascal_case(snake: &str) -> String {
    snake
        .split('_')
        .flat_map(|word| {
            let mut chars = word.chars();
            chars.next().map(|first| first.to_uppercase().chain(chars))
        })
        .flatten()
        .collect()
}

fn retries(expr: &Expr, errors: &mut Errors) -> Option<u32> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => int.base10_parse().map_err(|error| errors.push(error)).ok(),
        _ => {
            errors.at(expr, "`retries` takes a whole number, like `retries = 5`");
            None
        }
    }
}

fn template(
    literal: LitStr,
    fn_ident: &Ident,
    fields: &[&Field],
    errors: &mut Errors,
) -> Option<DisplayName> {
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
        [] => Some(DisplayName::Plain(String::new())),
        [Piece::Text(text)] => Some(DisplayName::Plain(text.clone())),
        _ => Some(DisplayName::Template { literal, pieces }),
    }
}

fn crate_path(literal: &LitStr, errors: &mut Errors) -> Option<Path> {
    match literal.parse::<Path>() {
        Ok(path)
            if path
                .segments
                .iter()
                .all(|segment| segment.arguments.is_none()) =>
        {
            Some(path)
        }
        _ => {
            errors.at(
                literal,
                "`crate` takes the path the `jobs` crate is reachable at, like `crate = \"my_jobs\"`",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pascal_case;

    #[test]
    fn pascal_case_joins_capitalised_words() {
        assert_eq!(pascal_case("send_reminder"), "SendReminder");
        assert_eq!(pascal_case("summarize"), "Summarize");
        assert_eq!(pascal_case("step_2_embed"), "Step2Embed");
        assert_eq!(pascal_case("_private__job_"), "PrivateJob");
        assert_eq!(pascal_case("élan_vital"), "ÉlanVital");
    }
}
