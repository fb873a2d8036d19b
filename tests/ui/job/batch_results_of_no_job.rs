use jobs::prelude::*;

/// `BatchResults` takes the type of the members' job, not what they return.
#[job]
async fn total(BatchResults(sizes): BatchResults<u64>) {
    let _ = sizes;
}

fn main() {}
