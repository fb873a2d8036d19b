use jobs::prelude::*;

#[job]
struct SendReminder {
    user_id: u64,
}

fn main() {}
