//! The options of `#[job(…)]` as written: which keys, which value tokens.

use proc_macro2::Ident;
use syn::Token;
use syn::ext::IdentExt;
use syn::parse::ParseStream;

use crate::settings::{Setting, Settings};

mod kw {
    syn::custom_keyword!(name);
    syn::custom_keyword!(display);
    syn::custom_keyword!(retries);
    syn::custom_keyword!(queue);
    syn::custom_keyword!(priority);
    syn::custom_keyword!(timeout);
    syn::custom_keyword!(backoff);
    syn::custom_keyword!(labels);
    syn::custom_keyword!(tool);
    syn::custom_keyword!(unique);
    syn::custom_keyword!(unique_key);
    syn::custom_keyword!(unique_states);
    syn::custom_keyword!(concurrency);
    syn::custom_keyword!(concurrency_key);
    syn::custom_keyword!(rate);
}

/// The value of each option given, keyed by the option.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) name: Option<Setting>,
    pub(crate) display: Option<Setting>,
    pub(crate) retries: Option<Setting>,
    pub(crate) queue: Option<Setting>,
    pub(crate) priority: Option<Setting>,
    pub(crate) timeout: Option<Setting>,
    pub(crate) backoff: Option<Setting>,
    pub(crate) labels: Option<Setting>,
    pub(crate) tool: Option<Setting>,
    pub(crate) unique: Option<Setting>,
    pub(crate) unique_key: Option<Setting>,
    pub(crate) unique_states: Option<Setting>,
    pub(crate) concurrency: Option<Setting>,
    pub(crate) concurrency_key: Option<Setting>,
    pub(crate) rate: Option<Setting>,
    pub(crate) krate: Option<Setting>,
}

impl Settings for Options {
    fn key(&mut self, input: ParseStream<'_>) -> syn::Result<(Ident, &mut Option<Setting>)> {
        let lookahead = input.lookahead1();
        let slot = if lookahead.peek(kw::name) {
            &mut self.name
        } else if lookahead.peek(kw::display) {
            &mut self.display
        } else if lookahead.peek(kw::retries) {
            &mut self.retries
        } else if lookahead.peek(kw::queue) {
            &mut self.queue
        } else if lookahead.peek(kw::priority) {
            &mut self.priority
        } else if lookahead.peek(kw::timeout) {
            &mut self.timeout
        } else if lookahead.peek(kw::backoff) {
            &mut self.backoff
        } else if lookahead.peek(kw::labels) {
            &mut self.labels
        } else if lookahead.peek(kw::tool) {
            &mut self.tool
        } else if lookahead.peek(kw::unique) {
            &mut self.unique
        } else if lookahead.peek(kw::unique_key) {
            &mut self.unique_key
        } else if lookahead.peek(kw::unique_states) {
            &mut self.unique_states
        } else if lookahead.peek(kw::concurrency) {
            &mut self.concurrency
        } else if lookahead.peek(kw::concurrency_key) {
            &mut self.concurrency_key
        } else if lookahead.peek(kw::rate) {
            &mut self.rate
        } else if lookahead.peek(Token![crate]) {
            &mut self.krate
        } else {
            return Err(lookahead.error());
        };
        Ok((input.call(Ident::parse_any)?, slot))
    }
}
