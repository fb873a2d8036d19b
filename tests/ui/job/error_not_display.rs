use jobs::prelude::*;

#[derive(Debug)]
struct Oops;

#[job]
async fn send_reminder(user_id: u64) -> Result<(), Oops> {
    let _ = user_id;
    Err(Oops)
}

fn main() {}
