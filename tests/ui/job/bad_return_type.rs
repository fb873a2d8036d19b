use jobs::prelude::*;

#[job]
async fn count_users() -> u64 {
    7
}

#[job]
async fn with_value() -> Result<u64, std::io::Error> {
    Ok(7)
}

fn main() {}
