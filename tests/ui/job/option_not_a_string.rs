use jobs::prelude::*;

#[job(display = send_reminder, name = 7, crate = "jobs<T>")]
async fn send_reminder(user_id: u64) {
    let _ = user_id;
}

fn main() {}
