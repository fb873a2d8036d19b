//! Starting a server without keeping it is a mistake the compiler points out: the
//! server stops as soon as it is dropped.
#![deny(unused_must_use)]

use jobs::{JobServer, Jobs};

async fn boot(jobs: Jobs) -> jobs::Result<()> {
    JobServer::builder(jobs).start().await?;
    Ok(())
}

fn main() {
    let _ = boot;
}
