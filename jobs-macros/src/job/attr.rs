//! The options of `#[job(…)]` as written: which keys, which value tokens. Judging the
//! values (is `retries` a whole number, does `name` name real parameters) is
//! `validate`'s job, so every bad value is reported, not just the first.

use proc_macro2::{Span, TokenStream};
use syn::parse::{ParseStream, Parser};
use syn::{Expr, Token};

use crate::errors::Errors;

mod kw {
    syn::custom_keyword!(retries);
    syn::custom_keyword!(name);
    syn::custom_keyword!(id);
}

/// The value of each option given, keyed by the option.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) retries: Option<Expr>,
    pub(crate) name: Option<Expr>,
    pub(crate) id: Option<Expr>,
    pub(crate) krate: Option<Expr>,
}

impl Options {
    /// Reads `key = value, …`. A syntax error (an unknown key, a missing `=`) ends the
    /// reading; the options read before it are kept.
    pub(crate) fn parse(args: TokenStream, errors: &mut Errors) -> Self {
        let mut options = Self::default();
        let parser = |input: ParseStream<'_>| {
            while !input.is_empty() {
                let (key, span, slot) = options.slot(input)?;
                input.parse::<Token![=]>()?;
                let value: Expr = input.parse()?;
                if slot.is_some() {
                    errors.at_span(span, format_args!("`{key}` is set twice"));
                } else {
                    *slot = Some(value);
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
        options
    }

    /// Reads one key and returns its name, its span and where its value goes.
    fn slot(
        &mut self,
        input: ParseStream<'_>,
    ) -> syn::Result<(&'static str, Span, &mut Option<Expr>)> {
        let lookahead = input.lookahead1();
        if lookahead.peek(kw::retries) {
            let key: kw::retries = input.parse()?;
            Ok(("retries", key.span, &mut self.retries))
        } else if lookahead.peek(kw::name) {
            let key: kw::name = input.parse()?;
            Ok(("name", key.span, &mut self.name))
        } else if lookahead.peek(kw::id) {
            let key: kw::id = input.parse()?;
            Ok(("id", key.span, &mut self.id))
        } else if lookahead.peek(Token![crate]) {
            let key: Token![crate] = input.parse()?;
            Ok(("crate", key.span, &mut self.krate))
        } else {
            Err(lookahead.error())
        }
    }
}
