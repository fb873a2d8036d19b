//! A job fn under `#[job]`, `#[recurring]` or both: read the options and the fn, check
//! them, emit the job and its schedule.
//!
//! The two attributes on one fn are expanded together, by whichever of them the compiler
//! expands first (the upper one): it takes the other off the fn, so that one never
//! expands on its own, and the fn gets exactly one struct and one registration in either
//! order. `#[recurring]` alone stands for `#[job]` with default options plus a schedule.

use std::fmt;

use proc_macro2::{Ident, Span, TokenStream};
use quote::{ToTokens, quote};
use syn::{Attribute, ItemFn, Meta};

use crate::errors::Errors;
use crate::recurring;
use crate::settings::Settings;

mod attr;
mod expand;
pub(crate) mod input;
mod template;
mod validate;

/// One of the two attributes a job fn is written with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Macro {
    Job,
    Recurring,
}

impl Macro {
    fn ident(self) -> &'static str {
        match self {
            Self::Job => "job",
            Self::Recurring => "recurring",
        }
    }

    /// Whether `attr` is this attribute, by its last segment: `job`, `jobs::job`, `my_jobs::job`…
    fn is(self, attr: &Attribute) -> bool {
        attr.path()
            .segments
            .last()
            .is_some_and(|last| last.ident == self.ident())
    }
}

impl fmt::Display for Macro {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#[{}]", self.ident())
    }
}

/// Expands `expanding` with `args` on `item`, and with it the other attribute if the fn
/// still carries it.
pub(crate) fn expand(expanding: Macro, args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let (mut options, mut schedule) = match expanding {
        Macro::Job => (attr::Options::parse(args, &mut errors), None),
        Macro::Recurring => {
            // Span::call_site() is the whole `#[recurring(…)]`, where a missing option
            // is reported.
            let attribute = Ident::new(expanding.ident(), Span::call_site());
            let schedule = recurring::Options::parse(args, &mut errors);
            (attr::Options::default(), Some(schedule.at(attribute)))
        }
    };
    let mut item = match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Fn(item)) => item,
        _ => {
            errors.at_span(
                Span::call_site(),
                format_args!("{expanding} goes on an `async fn`"),
            );
            let errors = errors.into_compile_errors();
            return quote!(#item #errors);
        }
    };
    let mut written = expanding;
    for attr in take_attributes(&mut item) {
        let args = attr_args(&attr, &mut errors);
        if Macro::Job.is(&attr) {
            if written == Macro::Job {
                errors.at(&attr, "#[job] is given twice");
            } else {
                written = Macro::Job;
                options = attr::Options::parse(args, &mut errors);
            }
        } else if schedule.is_some() {
            errors.at(&attr, "#[recurring] is given twice: a job has one schedule");
        } else {
            schedule = Some(recurring::Options::parse(args, &mut errors).at(attr));
        }
    }
    if let Some(krate) = schedule.as_mut().and_then(|schedule| schedule.krate.take()) {
        if options.krate.is_some() {
            errors.at(
                &krate,
                "`crate` is set on both #[job] and #[recurring]; set it on one of them",
            );
        } else {
            options.krate = Some(krate);
        }
    }

    let input = input::JobFn::read(item);
    // Whatever is wrong, the fn itself is emitted, so its body is still checked and
    // code calling it does not fail too.
    let job = validate::validate(options, &input, written, &mut errors);
    let schedule = schedule.and_then(|schedule| recurring::validate(schedule, &input, &mut errors));
    let mut item = input.item;
    let expansion = job.map(|job| {
        // `#[job]` needs an `async fn` even when it has nothing to await.
        item.attrs
            .push(syn::parse_quote!(#[allow(clippy::unused_async)]));
        let mut tokens = expand::expand(&job);
        tokens.extend(
            schedule.map(|schedule| recurring::expand(&schedule, &job.root, &job.struct_ident)),
        );
        tokens
    });
    let mut tokens = item.into_token_stream();
    tokens.extend(expansion);
    tokens.extend(errors.into_compile_errors());
    tokens
}

/// Takes the `#[job]` and `#[recurring]` attributes below the one being expanded off the
/// fn: they are expanded with it.
fn take_attributes(item: &mut ItemFn) -> Vec<Attribute> {
    let (taken, kept) = std::mem::take(&mut item.attrs)
        .into_iter()
        .partition(|attr| Macro::Job.is(attr) || Macro::Recurring.is(attr));
    item.attrs = kept;
    taken
}

/// The tokens inside `#[name(…)]`; none for a bare `#[name]`.
fn attr_args(attr: &Attribute, errors: &mut Errors) -> TokenStream {
    match &attr.meta {
        Meta::Path(_) => TokenStream::new(),
        Meta::List(list) => list.tokens.clone(),
        Meta::NameValue(name_value) => {
            errors.at(
                name_value,
                format_args!(
                    "write the options in parentheses: `#[{}(…)]`",
                    name_value.path.to_token_stream()
                ),
            );
            TokenStream::new()
        }
    }
}
