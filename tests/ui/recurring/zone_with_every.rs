use jobs::prelude::*;

#[recurring(id = "poll", every = "15m", zone = "Europe/Brussels")]
async fn poll_inbox() {}

fn main() {
    let _ = PollInbox;
}
