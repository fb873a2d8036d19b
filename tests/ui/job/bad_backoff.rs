use jobs::prelude::*;

#[job(backoff = "30s")]
async fn no_policy() {}

#[job(backoff = "linear(5s)")]
async fn unknown_policy() {}

#[job(backoff = "fixed(30)")]
async fn no_unit() {}

#[job(backoff = "exponential(2s, cap = 1h)")]
async fn misspelled_max() {}

#[job(backoff = "exponential(1h, max = 2s)")]
async fn max_below_base() {}

fn main() {
    let _ = (NoPolicy, UnknownPolicy, NoUnit, MisspelledMax, MaxBelowBase);
}
