use jobs::prelude::*;

#[recurring(id = "unknown-unit", every = "15 parsecs")]
async fn unknown_unit() {}

#[recurring(id = "zero", every = "0s")]
async fn zero() {}

#[recurring(id = "no-unit", every = "15")]
async fn no_unit() {}

#[recurring(id = "spaced", every = "1h 30 m")]
async fn spaced() {}

#[recurring(id = "negative", every = "-5s")]
async fn negative() {}

#[recurring(id = "too-large", every = "18446744073709552s")]
async fn too_large() {}

#[recurring(id = "empty", every = " ")]
async fn empty() {}

fn main() {
    let _ = (UnknownUnit, Zero, NoUnit, Spaced, Negative, TooLarge, Empty);
}
