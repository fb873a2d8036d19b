use jobs::prelude::*;

#[job(retries = "5")]
async fn quoted() {}

#[job(retries = 2.5)]
async fn fractional() {}

#[job(retries = -1)]
async fn negative() {}

#[job(retries = 5000000000)]
async fn too_large() {}

fn main() {}
