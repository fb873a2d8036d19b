use jobs::prelude::*;

#[job(timeout = "5 minutes")]
async fn spelled_out() {}

#[job(timeout = "0s")]
async fn zero() {}

#[job(timeout = "5")]
async fn no_unit() {}

#[job(timeout = "5 m")]
async fn spaced() {}

#[job(timeout = "")]
async fn empty() {}

#[job(timeout = 300)]
async fn not_a_string() {}

fn main() {
    let _ = (SpelledOut, Zero, NoUnit, Spaced, Empty, NotAString);
}
