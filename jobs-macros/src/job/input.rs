//! The fn under `#[job]` as written: its parameters sorted into injected ones (filled in
//! by the runtime) and data ones (stored in the payload).

use syn::{Attribute, FnArg, ItemFn, Pat, Receiver, Type};

/// The annotated fn and its parameters in the fn's order.
pub(crate) struct JobFn {
    /// The fn as it is emitted: unchanged but for the `///` and `#[serde]` attributes of
    /// data parameters, which move to the struct's fields (the compiler rejects them on
    /// parameters).
    pub(crate) item: ItemFn,
    pub(crate) params: Vec<Param>,
}

pub(crate) enum Param {
    Receiver(Receiver),
    /// A `JobContext` or `State<…>`, built by the runtime for each attempt.
    Injected(Type),
    Data(Box<DataParam>),
}

/// A parameter whose value is stored with the job.
pub(crate) struct DataParam {
    pub(crate) pat: Pat,
    pub(crate) ty: Type,
    pub(crate) docs: Vec<Attribute>,
    pub(crate) serde: Vec<Attribute>,
}

impl JobFn {
    pub(crate) fn read(mut item: ItemFn) -> Self {
        let params = item
            .sig
            .inputs
            .iter_mut()
            .map(|arg| match arg {
                FnArg::Receiver(receiver) => Param::Receiver(receiver.clone()),
                FnArg::Typed(typed) if is_injected(&typed.ty) => {
                    Param::Injected((*typed.ty).clone())
                }
                FnArg::Typed(typed) => {
                    let (mut docs, mut serde) = (Vec::new(), Vec::new());
                    typed.attrs.retain(|attr| {
                        let moved_to = match attr.path() {
                            path if path.is_ident("doc") => &mut docs,
                            path if path.is_ident("serde") => &mut serde,
                            _ => return true,
                        };
                        moved_to.push(attr.clone());
                        false
                    });
                    Param::Data(Box::new(DataParam {
                        pat: (*typed.pat).clone(),
                        ty: (*typed.ty).clone(),
                        docs,
                        serde,
                    }))
                }
            })
            .collect();
        Self { item, params }
    }
}

/// Whether the runtime provides this parameter: `JobContext`, or `State<T>` (a `State`
/// without arguments is taken to be the application's own type, which is data).
fn is_injected(ty: &Type) -> bool {
    match ty {
        Type::Group(group) => is_injected(&group.elem),
        Type::Paren(paren) => is_injected(&paren.elem),
        Type::Path(path) if path.qself.is_none() => path.path.segments.last().is_some_and(|last| {
            last.ident == "JobContext" && last.arguments.is_none()
                || last.ident == "State"
                    && matches!(last.arguments, syn::PathArguments::AngleBracketed(_))
        }),
        _ => false,
    }
}
