use jobs::prelude::*;

#[job(name = send_reminder, id = 7, crate = "jobs<T>")]
async fn send_reminder(user_id: u64) {
    let _ = user_id;
}

fn main() {}
