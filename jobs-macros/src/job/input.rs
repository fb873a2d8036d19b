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
    /// A `JobContext`, `State<…>`, `Parent<…>` or `BatchResults<…>`, built by the runtime
    /// for each attempt.
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

/// Whether the runtime provides this parameter: `JobContext`, `State<T>`, `Parent<T>`
/// or `BatchResults<J>` (one of them without arguments is taken to be the
/// application's own type, which is data).
fn is_injected(ty: &Type) -> bool {
    injected_name(ty).is_some()
}

/// Whether the parameter is the result of the job before this one (`Parent<T>`), which
/// the runtime reads before the attempt.
pub(crate) fn is_parent(ty: &Type) -> bool {
    injected_name(ty) == Some("Parent")
}

/// Whether the parameter is the results of the batch whose fan-in the job is
/// (`BatchResults<J>`), which the runtime reads before the attempt.
pub(crate) fn is_batch_results(ty: &Type) -> bool {
    injected_name(ty) == Some("BatchResults")
}

fn injected_name(ty: &Type) -> Option<&'static str> {
    match ty {
        Type::Group(group) => injected_name(&group.elem),
        Type::Paren(paren) => injected_name(&paren.elem),
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last()?;
            let generic = matches!(last.arguments, syn::PathArguments::AngleBracketed(_));
            if last.ident == "JobContext" && last.arguments.is_none() {
                Some("JobContext")
            } else if last.ident == "State" && generic {
                Some("State")
            } else if last.ident == "Parent" && generic {
                Some("Parent")
            } else if last.ident == "BatchResults" && generic {
                Some("BatchResults")
            } else {
                None
            }
        }
        _ => None,
    }
}
