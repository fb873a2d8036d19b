use jobs::prelude::*;

#[recurring(id = "poll", every = "15m", overlap = true)]
async fn poll_inbox() {}

fn main() {
    let _ = PollInbox;
}
