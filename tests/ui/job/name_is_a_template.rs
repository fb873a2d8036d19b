use jobs::prelude::*;

// `name` is the stable name the job is stored under; a display-name template goes in
// `display`.
#[job(name = "Send reminder to {user_id}")]
async fn send_reminder(user_id: u64) {
    let _ = user_id;
}

#[job(name = "")]
async fn unnamed(user_id: u64) {
    let _ = user_id;
}

// A bad option falls back to its default: the struct still exists, nothing else fails.
fn main() {
    let _ = SendReminder { user_id: 7 }.display_name();
    let _ = Unnamed { user_id: 7 };
}
