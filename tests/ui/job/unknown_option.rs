use jobs::prelude::*;

#[job(retires = 5)]
async fn send_reminder(user_id: u64) {
    let _ = user_id;
}

// A bad option falls back to its default: the struct still exists, nothing else fails.
fn main() {
    let _ = SendReminder { user_id: 7 }.display_name();
}
