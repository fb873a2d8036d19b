//! Emits what a checked [`Recurring`] stands for: in an unnamed `const`, its
//! `RecurringDescriptor`, registered through `inventory` for servers to store at start.

use proc_macro2::{Ident, Literal, TokenStream};
use quote::quote;
use syn::Path;

use super::validate::{Missed, Recurring, Schedule};

/// The schedule of the job whose struct is `struct_ident`: a unit struct, since a
/// recurring job has no data.
pub(crate) fn expand(recurring: &Recurring, root: &Path, struct_ident: &Ident) -> TokenStream {
    let private = quote!(#root::__private);
    let id = &recurring.id;
    // Capture-free, so it coerces to the descriptor's `fn() -> Result<JobTemplate>`.
    let template = quote!(|| #private::JobTemplate::of(&#struct_ident {}));
    let descriptor = match &recurring.schedule {
        Schedule::Cron(expression) => {
            quote!(#private::RecurringDescriptor::cron(#id, #expression, #template))
        }
        Schedule::Every(interval) => {
            quote!(#private::RecurringDescriptor::every(#id, #interval, #template))
        }
    };
    let zone = recurring.zone.as_ref().map(|zone| quote!(.zone(#zone)));
    let missed = recurring.missed.map(|missed| {
        let policy = match missed {
            Missed::Skip => quote!(Skip),
            Missed::RunOnce => quote!(RunOnce),
            Missed::CatchUp(max) => {
                let max = Literal::u32_unsuffixed(max);
                quote!(CatchUp { max: #max })
            }
        };
        quote!(.missed(#private::MissedTicks::#policy))
    });
    let allow_overlap = recurring
        .allow_overlap
        .as_ref()
        .map(|allow| quote!(.allow_overlap(#allow)));
    quote! {
        const _: () = {
            #private::inventory::submit! {
                #descriptor #zone #missed #allow_overlap
                    .release(::core::env!("CARGO_PKG_VERSION"))
            }
        };
    }
}
