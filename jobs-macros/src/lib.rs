//! Attribute macros of the `jobs` crate. Use them through `jobs`, not directly: the code
//! they generate reaches the runtime through `::jobs::__private`.

use proc_macro::TokenStream;

mod errors;
mod grammar;
mod job;
mod recurring;
mod settings;

use job::Macro;

#[doc = include_str!("../docs/job.md")]
#[proc_macro_attribute]
pub fn job(args: TokenStream, item: TokenStream) -> TokenStream {
    job::expand(Macro::Job, args.into(), item.into()).into()
}

#[doc = include_str!("../docs/recurring.md")]
#[proc_macro_attribute]
pub fn recurring(args: TokenStream, item: TokenStream) -> TokenStream {
    job::expand(Macro::Recurring, args.into(), item.into()).into()
}
