use jobs::prelude::*;

#[job(display = "Send {user_id")]
async fn unclosed(user_id: u64) {
    let _ = user_id;
}

#[job(display = "Send } to {user_id}")]
async fn unmatched(user_id: u64) {
    let _ = user_id;
}

#[job(display = "Send {} to {user_id}")]
async fn positional(user_id: u64) {
    let _ = user_id;
}

fn main() {}
