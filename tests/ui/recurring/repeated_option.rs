use jobs::prelude::*;

#[recurring(id = "poll", every = "15m", id = "poll-inbox")]
async fn poll_inbox() {}

fn main() {
    let _ = PollInbox;
}
