use jobs::prelude::*;

#[job]
async fn by_type<T: serde::Serialize>(value: T) {
    let _ = value;
}

#[job]
async fn by_lifetime<'a>(ctx: JobContext) {
    let _ = ctx;
}

#[job]
async fn by_const<const N: usize>() {}

#[job]
async fn by_impl_trait(value: impl serde::Serialize) {
    let _ = value;
}

fn main() {}
