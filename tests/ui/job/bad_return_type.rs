use jobs::prelude::*;

#[job]
async fn count_users() -> u64 {
    7
}

/// Not `Serialize`: a file handle is no result to store.
#[job]
async fn with_value() -> Result<std::fs::File, std::io::Error> {
    std::fs::File::open("/dev/null")
}

fn main() {}
