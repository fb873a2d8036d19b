use std::rc::Rc;

use jobs::prelude::*;

async fn pause() {}

#[job]
async fn send_reminder(user_id: u64) {
    let shared = Rc::new(user_id);
    pause().await;
    let _ = shared;
}

fn main() {}
