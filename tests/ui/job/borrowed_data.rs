use jobs::prelude::*;

#[job]
async fn send_reminder(text: &str) {
    let _ = text;
}

fn main() {}
