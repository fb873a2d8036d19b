use jobs::prelude::*;

#[job(retries = 5, display = "Reminder", retries = 3)]
async fn send_reminder(user_id: u64) {
    let _ = user_id;
}

fn main() {}
