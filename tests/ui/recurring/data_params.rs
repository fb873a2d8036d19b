use jobs::prelude::*;

#[derive(Clone)]
struct Mailer;

#[recurring(id = "digest", cron = "0 8 * * MON")]
async fn send_digest(
    State(_mailer): State<Mailer>,
    user_id: u64,
    ctx: JobContext,
    #[serde(default)] subject: String,
) {
    let _ = (user_id, ctx, subject);
}

// The job is still generated, with its data: only the schedule is refused.
fn main() {
    let _ = SendDigest {
        user_id: 7,
        subject: String::new(),
    };
}
