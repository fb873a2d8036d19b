use jobs::prelude::*;

#[recurring(id = "typo", cron = "0 8 * * *", zone = "Europe/Brusels")]
async fn typo() {}

#[recurring(id = "lower-case", cron = "0 8 * * *", zone = "europe/brussels")]
async fn lower_case() {}

#[recurring(id = "not-a-zone", cron = "0 8 * * *", zone = "Mars/Olympus")]
async fn not_a_zone() {}

#[recurring(id = "offset", cron = "0 8 * * *", zone = "+01:00")]
async fn offset() {}

fn main() {
    let _ = (Typo, LowerCase, NotAZone, Offset);
}
