use jobs::prelude::*;

#[job]
fn send_reminder(user_id: u64) {
    let _ = user_id;
}

fn main() {}
