//! The options of `#[recurring(…)]` as written: which keys, which value tokens.

use proc_macro2::{Ident, TokenStream};
use quote::ToTokens;
use syn::Token;
use syn::ext::IdentExt;
use syn::parse::ParseStream;

use crate::settings::{Setting, Settings};

mod kw {
    syn::custom_keyword!(id);
    syn::custom_keyword!(cron);
    syn::custom_keyword!(every);
    syn::custom_keyword!(zone);
    syn::custom_keyword!(missed);
    syn::custom_keyword!(allow_overlap);
}

/// The value of each option given, keyed by the option.
#[derive(Default)]
pub(crate) struct Options {
    /// The attribute as written, where a missing option is reported.
    pub(crate) attribute: TokenStream,
    pub(crate) id: Option<Setting>,
    pub(crate) cron: Option<Setting>,
    pub(crate) every: Option<Setting>,
    pub(crate) zone: Option<Setting>,
    pub(crate) missed: Option<Setting>,
    pub(crate) allow_overlap: Option<Setting>,
    pub(crate) krate: Option<Setting>,
}

impl Options {
    /// The same options, written as `attribute`.
    pub(crate) fn at(mut self, attribute: impl ToTokens) -> Self {
        self.attribute = attribute.into_token_stream();
        self
    }
}

impl Settings for Options {
    fn key(&mut self, input: ParseStream<'_>) -> syn::Result<(Ident, &mut Option<Setting>)> {
        let lookahead = input.lookahead1();
        let slot = if lookahead.peek(kw::id) {
            &mut self.id
        } else if lookahead.peek(kw::cron) {
            &mut self.cron
        } else if lookahead.peek(kw::every) {
            &mut self.every
        } else if lookahead.peek(kw::zone) {
            &mut self.zone
        } else if lookahead.peek(kw::missed) {
            &mut self.missed
        } else if lookahead.peek(kw::allow_overlap) {
            &mut self.allow_overlap
        } else if lookahead.peek(Token![crate]) {
            &mut self.krate
        } else {
            return Err(lookahead.error());
        };
        Ok((input.call(Ident::parse_any)?, slot))
    }
}
