//! `key = value, …` as written in `#[job(…)]` and `#[recurring(…)]`. Judging the values
//! (is `retries` a whole number, does `cron` parse) is each macro's `validate`'s job, so
//! every bad value is reported, not just the first.

use proc_macro2::{Ident, TokenStream};
use quote::{ToTokens, quote};
use syn::parse::{ParseStream, Parser};
use syn::{Expr, ExprLit, Lit, LitBool, LitStr, Token};

use crate::errors::Errors;

/// One `key = value` as written.
pub(crate) struct Setting {
    pub(crate) key: Ident,
    pub(crate) value: Expr,
}

impl Setting {
    /// The value as a string literal; anything else is an error showing `example`.
    pub(crate) fn string(&self, example: &str, errors: &mut Errors) -> Option<LitStr> {
        match &self.value {
            Expr::Lit(ExprLit {
                lit: Lit::Str(string),
                ..
            }) => Some(string.clone()),
            value => {
                let key = &self.key;
                errors.at(
                    value,
                    format_args!("`{key}` takes a string literal, like `{key} = \"{example}\"`"),
                );
                None
            }
        }
    }

    /// The value as `true` or `false`.
    pub(crate) fn boolean(&self, errors: &mut Errors) -> Option<LitBool> {
        match &self.value {
            Expr::Lit(ExprLit {
                lit: Lit::Bool(boolean),
                ..
            }) => Some(boolean.clone()),
            value => {
                errors.at(
                    value,
                    format_args!("`{}` takes `true` or `false`", self.key),
                );
                None
            }
        }
    }
}

/// The whole `key = value`, for errors about the setting rather than its value.
impl ToTokens for Setting {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let Self { key, value } = self;
        tokens.extend(quote!(#key = #value));
    }
}

/// The options of one attribute: the keys it knows and where each one's value goes.
pub(crate) trait Settings: Default {
    /// Reads one key and returns it with the slot of its value. Peeks with
    /// `lookahead1`, so an unknown key is reported on itself with the keys there are.
    fn key(&mut self, input: ParseStream<'_>) -> syn::Result<(Ident, &mut Option<Setting>)>;

    /// Reads `key = value, …`. A syntax error (an unknown key, a missing `=`) ends the
    /// reading; the options read before it are kept.
    fn parse(args: TokenStream, errors: &mut Errors) -> Self {
        let mut settings = Self::default();
        let parser = |input: ParseStream<'_>| {
            while !input.is_empty() {
                let (key, slot) = settings.key(input)?;
                input.parse::<Token![=]>()?;
                let value: Expr = input.parse()?;
                if slot.is_some() {
                    errors.at(&key, format_args!("`{key}` is set twice"));
                } else {
                    *slot = Some(Setting { key, value });
                }
                if !input.is_empty() {
                    input.parse::<Token![,]>()?;
                }
            }
            Ok(())
        };
        if let Err(error) = parser.parse2(args) {
            errors.push(error);
        }
        settings
    }
}
