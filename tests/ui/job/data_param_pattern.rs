use jobs::prelude::*;

#[job]
async fn send_reminder((user_id, text): (u64, String)) {
    let _ = (user_id, text);
}

#[job]
async fn ignored(_: u64) {}

fn main() {}
