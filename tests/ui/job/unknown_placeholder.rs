use jobs::prelude::*;

#[job(display = "Send reminder to {usr_id}")]
async fn send_reminder(ctx: JobContext, user_id: u64, text: String) {
    let _ = (ctx, user_id, text);
}

#[job(display = "Attempt {ctx}")]
async fn summarize_inbox(ctx: JobContext) {
    let _ = ctx;
}

fn main() {}
