//! `#[job]`: read the options and the fn, check them, emit the job.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};

use crate::errors::Errors;

mod attr;
mod expand;
mod input;
mod template;
mod validate;

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let options = attr::Options::parse(args, &mut errors);
    let item = match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Fn(item)) => item,
        _ => {
            errors.at_span(Span::call_site(), "#[job] goes on an `async fn`");
            let errors = errors.into_compile_errors();
            return quote!(#item #errors);
        }
    };
    let input = input::JobFn::read(item);
    // Whatever is wrong, the fn itself is emitted, so its body is still checked and
    // code calling it does not fail too.
    let job = validate::validate(options, &input, &mut errors);
    let mut item = input.item;
    let expansion = job.map(|job| {
        // `#[job]` needs an `async fn` even when it has nothing to await.
        item.attrs
            .push(syn::parse_quote!(#[allow(clippy::unused_async)]));
        expand::expand(&job)
    });
    let mut tokens = item.into_token_stream();
    tokens.extend(expansion);
    tokens.extend(errors.into_compile_errors());
    tokens
}
