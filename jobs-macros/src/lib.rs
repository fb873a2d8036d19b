//! Attribute macros of the `jobs` crate. Use them through `jobs`, not directly.

use proc_macro::TokenStream;

/// Turns an async fn into a durable job; see the `jobs` crate.
#[proc_macro_attribute]
pub fn job(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
