use jobs::prelude::*;

#[derive(Debug)]
struct Recipient {
    user_id: u64,
}

#[job]
async fn send_reminder(recipient: Recipient) {
    let _ = recipient.user_id;
}

fn main() {}
