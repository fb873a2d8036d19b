//! Judges what `attr` and `input` read and builds the [`Job`] that `expand` emits, with
//! one error per mistake on the token that is wrong.

use proc_macro2::Span;
use quote::format_ident;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    Attribute, Expr, ExprLit, ExprUnary, Ident, Lit, LitInt, LitStr, Pat, Path, ReturnType, Type,
    UnOp, Visibility,
};

use super::Macro;
use super::attr::Options;
use super::input::{JobFn, Param};
use super::template::Piece;
use crate::errors::Errors;
use crate::grammar;
use crate::settings::Setting;

mod concurrency;
mod text;
mod unique;

pub(crate) use concurrency::Concurrency;
use text::{labels, template};
pub(crate) use unique::Unique;

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
    /// The fn's return type; `None` for `()`.
    pub(crate) output: Option<Type>,
    /// The stable stored name if pinned; `module_path!()::fn_name` otherwise.
    pub(crate) name: Option<LitStr>,
    /// `None` keeps the runtime's default, as for the three below.
    pub(crate) retries: Option<u32>,
    pub(crate) queue: Option<LitStr>,
    pub(crate) priority: Option<i32>,
    pub(crate) timeout_millis: Option<u64>,
    pub(crate) backoff: Option<jobs_grammar::BackoffPolicy>,
    pub(crate) display: Text,
    /// Distinct and non-empty; none when the job has no labels.
    pub(crate) labels: Vec<Text>,
    /// False with `tool = false`: no schema, never offered as an agent tool.
    pub(crate) tool: bool,
    /// With `unique = "…"`: the window, the key and the states that count.
    pub(crate) unique: Option<Unique>,
    /// With `concurrency_key = "…"`: the key's template and how many run at once.
    pub(crate) concurrency: Option<Concurrency>,
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
    /// Whether a payload must carry it: serde fills in an `Option` or a
    /// `#[serde(default)]` field that is missing.
    pub(crate) required: bool,
    /// Its name in the payload: the parameter's, or its `#[serde(rename = "…")]`.
    pub(crate) json_name: String,
    /// False for a `#[serde(skip)]` field, which arguments cannot set.
    pub(crate) in_schema: bool,
}

/// A text a run shows: its display name, or one of its labels.
pub(crate) enum Text {
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
    let name = options
        .name
        .and_then(|setting| setting.string("reminders.send", errors))
        .and_then(|name| stored_name(name, errors));
    let display = options
        .display
        .and_then(|setting| setting.string("Send reminder to {user_id}", errors))
        .and_then(|literal| template(literal, &sig.ident, &data, errors))
        .unwrap_or_else(|| Text::Plain(sig.ident.unraw().to_string()));
    let queue = options.queue.and_then(|setting| queue(&setting, errors));
    let priority = options
        .priority
        .and_then(|setting| priority(&setting.value, errors));
    let timeout_millis = options
        .timeout
        .and_then(|setting| timeout_millis(&setting, errors));
    let backoff = options
        .backoff
        .and_then(|setting| backoff(&setting, errors));
    let labels = options
        .labels
        .map(|setting| labels(&setting, &sig.ident, &data, errors))
        .unwrap_or_default();
    let unique = unique::unique(
        unique::Settings {
            window: options.unique,
            key: options.unique_key,
            states: options.unique_states,
        },
        &sig.ident,
        &data,
        errors,
    );
    let concurrency = concurrency::concurrency(
        concurrency::Settings {
            key: options.concurrency_key,
            limit: options.concurrency,
            rate: options.rate,
        },
        &sig.ident,
        &data,
        errors,
    );
    let tool = options
        .tool
        .and_then(|setting| setting.boolean(errors))
        .is_none_or(|tool| tool.value);
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
        output: match &sig.output {
            ReturnType::Type(_, ty) => Some((**ty).clone()),
            ReturnType::Default => None,
        },
        args,
        name,
        retries,
        queue,
        priority,
        timeout_millis,
        backoff,
        display,
        labels,
        tool,
        unique,
        concurrency,
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
                 of the job's struct (only `JobContext`, `State<…>` and `Parent<…>` parameters \
                 take patterns)",
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
    let serde = serde_field(&data.serde);
    Some(Arg::Data(Field {
        json_name: serde.rename.unwrap_or_else(|| ident.unraw().to_string()),
        in_schema: !serde.skipped,
        required: !is_option(&data.ty) && !serde.default && !serde.skipped,
        ident,
        ty: data.ty.clone(),
        docs: data.docs.clone(),
        serde: data.serde.clone(),
    }))
}

/// `Option<…>` by its last segment, as serde's derive reads it.
fn is_option(ty: &Type) -> bool {
    match ty {
        Type::Group(group) => is_option(&group.elem),
        Type::Paren(paren) => is_option(&paren.elem),
        Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|last| last.ident == "Option"),
        _ => false,
    }
}

/// What the `#[serde(…)]` attributes of a field change about its schema.
#[derive(Default)]
struct SerdeField {
    /// `default` or `default = "…"`: a payload may leave it out.
    default: bool,
    /// `rename = "…"`: its name in JSON.
    rename: Option<String>,
    /// `skip` or `skip_deserializing`: never read from JSON.
    skipped: bool,
}

fn serde_field(serde: &[Attribute]) -> SerdeField {
    let mut field = SerdeField::default();
    for attr in serde {
        // A malformed attribute is serde's to report.
        let _ = attr.parse_nested_meta(|meta| {
            let path = &meta.path;
            field.default |= path.is_ident("default");
            field.skipped |= path.is_ident("skip") || path.is_ident("skip_deserializing");
            if meta.input.peek(syn::Token![=]) {
                let value = meta.value()?.parse::<Expr>()?;
                if path.is_ident("rename")
                    && let Expr::Lit(ExprLit {
                        lit: Lit::Str(name),
                        ..
                    }) = value
                {
                    field.rename = Some(name.value());
                }
            } else if meta.input.peek(syn::token::Paren) {
                meta.input.parse::<proc_macro2::Group>()?;
            }
            Ok(())
        });
    }
    field
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

/// The name of the queue the job's runs go to.
fn queue(setting: &Setting, errors: &mut Errors) -> Option<LitStr> {
    let literal = setting.string("llm", errors)?;
    match grammar::queue_name(&literal.value()) {
        Ok(()) => Some(literal),
        Err(message) => {
            errors.at(&literal, message);
            None
        }
    }
}

/// An `i32` written as an integer literal, negated or not.
fn priority(expr: &Expr, errors: &mut Errors) -> Option<i32> {
    let Some((negative, int)) = signed_int(expr) else {
        errors.at(
            expr,
            "`priority` takes a whole number, like `priority = 10` or `priority = -5`; \
             higher runs first",
        );
        return None;
    };
    let priority = int
        .base10_digits()
        .parse::<i64>()
        .ok()
        .map(|magnitude| if negative { -magnitude } else { magnitude })
        .and_then(|priority| i32::try_from(priority).ok());
    if priority.is_none() {
        errors.at(
            expr,
            format_args!(
                "`priority` is out of range: it is an `i32`, from {} to {}",
                i32::MIN,
                i32::MAX
            ),
        );
    }
    priority
}

/// `5` or `-5` (which Rust reads as `-` applied to `5`).
fn signed_int(expr: &Expr) -> Option<(bool, &LitInt)> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => Some((false, int)),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) => match &**expr {
            Expr::Lit(ExprLit {
                lit: Lit::Int(int), ..
            }) => Some((true, int)),
            _ => None,
        },
        _ => None,
    }
}

/// The stable name the job is stored under: not empty, and without the `{` of a display
/// template, which belongs in `display`.
fn stored_name(name: LitStr, errors: &mut Errors) -> Option<LitStr> {
    let text = name.value();
    if text.trim().is_empty() {
        errors.at(&name, "the `name` of a job cannot be empty");
        return None;
    }
    if text.contains('{') {
        errors.at(
            &name,
            format_args!(
                "`name` is the stable name the job is stored under and takes no \
                 placeholders; a display-name template goes in `display`: `display = {}`",
                name.token()
            ),
        );
        return None;
    }
    Some(name)
}

/// How long one attempt may run, in milliseconds.
fn timeout_millis(setting: &Setting, errors: &mut Errors) -> Option<u64> {
    let literal = setting.string("5m", errors)?;
    grammar::timeout_millis(&literal.value())
        .map_err(|message| errors.at(&literal, message))
        .ok()
}

/// How long to wait before each retry.
fn backoff(setting: &Setting, errors: &mut Errors) -> Option<jobs_grammar::BackoffPolicy> {
    let literal = setting.string("exponential(2s, max = 1h)", errors)?;
    grammar::backoff(&literal.value())
        .map_err(|message| errors.at(&literal, message))
        .ok()
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
