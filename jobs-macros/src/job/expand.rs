//! Emits what a checked [`Job`] stands for: the data struct, and in an unnamed `const`
//! its run fn, its `impl Job` and its registration.

use proc_macro2::{Group, Literal, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::LitStr;
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use super::template::Piece;
use super::validate::{Arg, Job, Text};

pub(crate) fn expand(job: &Job) -> TokenStream {
    let data_struct = data_struct(job);
    let run = run_fn(job);
    let Job {
        root,
        fn_ident,
        struct_ident,
        ..
    } = job;
    let private = quote!(#root::__private);
    let name = match &job.name {
        Some(name) => quote!(#name),
        None => {
            let fn_name = fn_ident.unraw().to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #fn_name))
        }
    };
    let retries = job.retries.map(|retries| {
        let retries = Literal::u32_unsuffixed(retries);
        quote!(.retries(#retries))
    });
    let queue = job.queue.as_ref().map(|queue| quote!(.queue(#queue)));
    let priority = job.priority.map(|priority| {
        let priority = Literal::i32_unsuffixed(priority);
        quote!(.priority(#priority))
    });
    let timeout = job.timeout_millis.map(|millis| {
        let millis = Literal::u64_unsuffixed(millis);
        quote!(.timeout(::core::time::Duration::from_millis(#millis)))
    });
    let backoff = job.backoff.map(|policy| {
        let millis = |duration: std::time::Duration| {
            let millis =
                Literal::u64_unsuffixed(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX));
            quote!(::core::time::Duration::from_millis(#millis))
        };
        let policy = match policy {
            jobs_grammar::BackoffPolicy::Fixed(delay) => {
                let delay = millis(delay);
                quote!(#private::BackoffPolicy::Fixed(#delay))
            }
            jobs_grammar::BackoffPolicy::Exponential { base, max } => {
                let base = millis(base);
                let max = match max {
                    Some(max) => {
                        let max = millis(max);
                        quote!(::core::option::Option::Some(#max))
                    }
                    None => quote!(::core::option::Option::None),
                };
                quote!(#private::BackoffPolicy::Exponential { base: #base, max: #max })
            }
        };
        quote!(.backoff(#policy))
    });
    let schema = job.tool.then(|| {
        let schema = schema_fn(job);
        quote!(.schema({ #schema __jobs_schema }))
    });
    let not_a_tool = (!job.tool).then(|| quote!(.not_a_tool()));
    let shape = shape(job);
    let unique = job.unique.as_ref().map(|unique| {
        let millis = Literal::u64_unsuffixed(unique.window_millis);
        let states = unique.states.map(|variant| {
            let variant = format_ident!("{variant}");
            quote!(.states(#private::UniqueStates::#variant))
        });
        quote!(.unique(
            #private::Unique::within(::core::time::Duration::from_millis(#millis)) #states
        ))
    });
    // Without a key template the trait's default (the arguments) stays.
    let unique_key = job
        .unique
        .as_ref()
        .and_then(|unique| unique.key.as_ref())
        .map(|key| {
            let key = render(job, key);
            quote! {
                fn unique_key(&self) -> ::core::option::Option<::std::string::String> {
                    ::core::option::Option::Some(#key)
                }
            }
        });
    let concurrency = job.concurrency.as_ref().map(|concurrency| {
        let key_of = quote!(#private::concurrency_key_of::<#struct_ident>);
        let limit = concurrency.limit.map(|limit| {
            let limit = Literal::u32_unsuffixed(limit);
            quote!(.concurrency(#limit, #key_of))
        });
        let rate = concurrency.rate.map(|(count, millis)| {
            let count = Literal::u32_unsuffixed(count);
            let millis = Literal::u64_unsuffixed(millis);
            quote!(.rate_per_key(
                #private::Rate::per(#count, ::core::time::Duration::from_millis(#millis)),
                #key_of
            ))
        });
        quote!(#limit #rate)
    });
    let concurrency_key = job.concurrency.as_ref().map(|concurrency| {
        let key = render(job, &concurrency.key);
        quote! {
            fn concurrency_key(&self) -> ::core::option::Option<::std::string::String> {
                ::core::option::Option::Some(#key)
            }
        }
    });
    let reads_parent = job
        .args
        .iter()
        .any(|arg| matches!(arg, Arg::Injected(ty) if super::input::is_parent(ty)))
        .then(|| quote!(.reads_parent()));
    let reads_batch = job
        .args
        .iter()
        .any(|arg| matches!(arg, Arg::Injected(ty) if super::input::is_batch_results(ty)))
        .then(|| quote!(.reads_batch()));
    // Spanned on the return type, where an unfit one is reported.
    let output = match &job.output {
        Some(ty) => {
            let spanned = respan(private.clone(), job.output_span);
            quote_spanned!(job.output_span=> <#ty as #spanned::JobOutput>::Value)
        }
        None => quote!(()),
    };
    let display_name = render(job, &job.display);
    // Without labels the trait's default (none) stays.
    let labels = (!job.labels.is_empty()).then(|| {
        let labels = job.labels.iter().map(|label| render(job, label));
        quote! {
            fn labels(&self) -> ::std::vec::Vec<::std::string::String> {
                ::std::vec![#(#labels),*]
            }
        }
    });
    // The bounds a field's type needs, checked on the user's type so that is where the
    // compiler points.
    let data_checks = job.fields().map(|field| {
        let ty = &field.ty;
        quote_spanned!(ty.span()=> #private::assert_data::<#ty>();)
    });
    quote! {
        #data_struct

        const _: () = {
            #run

            #(#data_checks)*

            impl #private::Job for #struct_ident {
                type Output = #output;

                const DESCRIPTOR: #private::JobDescriptor =
                    #private::JobDescriptor::new(#name, __jobs_run)
                        #retries #queue #priority #timeout #backoff #schema #not_a_tool
                        #reads_parent #reads_batch #unique #concurrency .shape(#shape);

                fn display_name(&self) -> ::std::string::String {
                    #display_name
                }

                #labels

                #unique_key

                #concurrency_key
            }

            #private::inventory::submit! {
                <#struct_ident as #private::Job>::DESCRIPTOR
            }
        };
    }
}

/// The `SchemaFn` of the job: each field's schema through `SchemaProbe`, so a field
/// type without `JsonSchema` leaves the job without a schema instead of failing to build.
fn schema_fn(job: &Job) -> TokenStream {
    let private = {
        let root = &job.root;
        quote!(#root::__private)
    };
    let description = doc_text(&job.docs);
    let fields = job.fields().filter(|field| field.in_schema).map(|field| {
        let name = &field.json_name;
        let ty = &field.ty;
        let docs = doc_text(&field.docs);
        let required = field.required;
        quote! {
            let __jobs_field = (&&#private::SchemaProbe::<#ty>::new())
                .field_schema(__jobs_schema.generator());
            __jobs_schema.field(#name, __jobs_field, #docs, #required);
        }
    });
    quote! {
        fn __jobs_schema() -> ::core::result::Result<
            #private::serde_json::Value,
            ::std::string::String,
        > {
            use #private::{ProbeJsonSchema as _, ProbeNoSchema as _};
            #[allow(unused_mut)]
            let mut __jobs_schema = #private::DataSchema::new(#description);
            #(#fields)*
            __jobs_schema.finish()
        }
    }
}

/// The text of `///` lines, one paragraph per blank line, as a model reads a description.
fn doc_text(docs: &[syn::Attribute]) -> String {
    let lines: Vec<String> = docs
        .iter()
        .filter_map(|attr| match &attr.meta {
            syn::Meta::NameValue(syn::MetaNameValue {
                value:
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(text),
                        ..
                    }),
                ..
            }) => Some(text.value().trim().to_owned()),
            _ => None,
        })
        .collect();
    lines.join("\n").trim().to_owned()
}

/// `pub struct SendReminder { pub user_id: u64, … }`, documented so it passes
/// `missing_docs` in the user's crate.
fn data_struct(job: &Job) -> TokenStream {
    let Job {
        root,
        vis,
        fn_ident,
        struct_ident,
        docs,
        ..
    } = job;
    let fn_name = fn_ident.unraw();
    let summary = format!("Data of the [`{fn_name}`] job: enqueue it to run the fn.");
    // A blank line, so the fn's own docs become paragraphs after the summary.
    let blank = (!docs.is_empty()).then(|| quote!(#[doc = ""]));
    let serde_crate = LitStr::new(
        &format!("{}::__private::serde", path_string(root)),
        root.span(),
    );
    let private = quote!(#root::__private);
    let body = if job.fields().next().is_none() {
        // A unit struct, so a job without data is written `SummarizeInbox`, not
        // `SummarizeInbox {}`; it is stored as `null`.
        quote!(;)
    } else {
        let fields = job.fields().map(|field| {
            let (ident, ty, serde) = (&field.ident, &field.ty, &field.serde);
            let docs = if field.docs.is_empty() {
                let doc = format!("The `{}` parameter of [`{fn_name}`].", ident.unraw());
                quote!(#[doc = #doc])
            } else {
                let docs = &field.docs;
                quote!(#(#docs)*)
            };
            quote!(#docs #(#serde)* #vis #ident: #ty)
        });
        quote!({ #(#fields,)* })
    };
    quote! {
        #[doc = #summary]
        #blank
        #(#docs)*
        #[derive(::core::fmt::Debug, #private::serde::Serialize, #private::serde::Deserialize)]
        #[serde(crate = #serde_crate)]
        #vis struct #struct_ident #body
    }
}

/// A fingerprint of the job's data as written: each field's payload name, type and serde
/// attributes, hashed (64-bit FNV-1a, stable across builds and toolchains) into 16 hex
/// digits. Two builds whose fingerprints differ may decode a payload differently.
fn shape(job: &Job) -> LitStr {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for field in job.fields() {
        let (ty, serde) = (&field.ty, &field.serde);
        let text = format!(
            "{}:{};{};",
            field.json_name,
            quote!(#ty),
            quote!(#(#serde)*)
        );
        for byte in text.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    LitStr::new(&format!("{hash:016x}"), Span::call_site())
}

/// The `RunFn` of the job: decode the payload, inject the other parameters, call the fn
/// with them in its own order, and turn what it returns into `Ok` or a `Failure`.
fn run_fn(job: &Job) -> TokenStream {
    let Job {
        root,
        fn_ident,
        struct_ident,
        output_span,
        ..
    } = job;
    let private = quote!(#root::__private);
    // Parameters are bound to generated names only, so no user name can shadow them.
    let vars: Vec<_> = (0..job.args.len())
        .map(|i| format_ident!("__jobs_arg{i}"))
        .collect();
    let mut fields = Vec::new();
    let mut injections = Vec::new();
    for (arg, var) in job.args.iter().zip(&vars) {
        match arg {
            Arg::Data(field) => {
                let ident = &field.ident;
                fields.push(quote!(#ident: #var));
            }
            Arg::Injected(ty) => injections.push(quote! {
                let #var = __jobs_invocation.extract::<#ty>()?;
            }),
        }
    }
    // Spanned on the fn's return type (its name when it has none): a future that is
    // not `Send`, or a return type that is not a job outcome, is reported there rather
    // than on `#[job]`.
    let spanned_private = respan(private.clone(), *output_span);
    let call = quote_spanned! {*output_span=>
        #spanned_private::assert_send_future(#fn_ident(#(#vars),*))
    };
    let outcome = quote_spanned! {*output_span=>
        match #spanned_private::JobOutput::into_result(__jobs_out) {
            ::core::result::Result::Ok(__jobs_value) => #spanned_private::encode_result(&__jobs_value),
            ::core::result::Result::Err(__jobs_error) => ::core::result::Result::Err(
                (&&&&&&#spanned_private::ErrorProbe(__jobs_error)).to_failure(),
            ),
        }
    };
    quote! {
        fn __jobs_run(
            __jobs_invocation: #private::Invocation,
        ) -> #private::BoxFuture<
            'static,
            ::core::result::Result<::core::option::Option<::std::string::String>, #private::Failure>,
        > {
            ::std::boxed::Box::pin(async move {
                use #private::{
                    ProbeAnyhow as _, ProbeDisplay as _, ProbeDynError as _, ProbeFailure as _,
                    ProbeJobError as _, ProbeStdError as _,
                };
                let #struct_ident { #(#fields),* } =
                    __jobs_invocation.decode::<#struct_ident>()?;
                #(#injections)*
                ::core::mem::drop(__jobs_invocation);
                let __jobs_out = #call.await;
                #outcome
            })
        }
    }
}

/// A `String` of `text` for this run: the fixed text, or a `format!` of the fields the
/// template shows.
fn render(job: &Job, text: &Text) -> TokenStream {
    let (literal, pieces) = match text {
        Text::Plain(text) => return quote!(::std::string::String::from(#text)),
        Text::Template { literal, pieces } => (literal, pieces),
    };
    let mut format = String::new();
    let mut args = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => format.push_str(&text.replace('{', "{{").replace('}', "}}")),
            Piece::Field { name, spec } => {
                format.push('{');
                if !spec.is_empty() {
                    format.push(':');
                    format.push_str(spec);
                }
                format.push('}');
                let field = job
                    .fields()
                    .map(|field| &field.ident)
                    .find(|ident| ident.unraw() == name)
                    .expect("validate checked that every placeholder names a field");
                args.push(quote!(self.#field));
            }
        }
    }
    // On the user's literal, so a bad format spec or a field that is not `Display`
    // is reported there.
    let format = LitStr::new(&format, literal.span());
    quote!(::std::format!(#format, #(#args),*))
}

/// The same tokens, all spanned at `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|token| match token {
            TokenTree::Group(group) => {
                let mut respanned = Group::new(group.delimiter(), respan(group.stream(), span));
                respanned.set_span(span);
                TokenTree::Group(respanned)
            }
            mut token => {
                token.set_span(span);
                token
            }
        })
        .collect()
}

/// `::my::jobs` as written in `#[serde(crate = "…")]`.
fn path_string(path: &syn::Path) -> String {
    let segments = path
        .segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect::<Vec<_>>()
        .join("::");
    match path.leading_colon {
        Some(_) => format!("::{segments}"),
        None => segments,
    }
}
