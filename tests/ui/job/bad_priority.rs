use jobs::prelude::*;

#[job(priority = "10")]
async fn quoted() {}

#[job(priority = 1.5)]
async fn fractional() {}

#[job(priority = high)]
async fn named() {}

#[job(priority = 2147483648)]
async fn too_high() {}

#[job(priority = -2147483649)]
async fn too_low() {}

#[job(priority = 99999999999999999999999)]
async fn far_too_high() {}

fn main() {
    let _ = (Quoted, Fractional, Named, TooHigh, TooLow, FarTooHigh);
}
