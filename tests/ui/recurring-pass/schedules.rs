//! Schedules the runtime accepts compile: `tests/macros/recurring.rs` checks every string
//! here against the runtime's parsers too.

use jobs::prelude::*;

#[recurring(id = "unix", cron = "0 8 * * *")]
async fn unix() {}

#[recurring(id = "seconds", cron = "30 0 8 * * *")]
async fn seconds() {}

#[recurring(id = "day-names", cron = "0 2 * * MON-FRI", zone = "Europe/Brussels")]
async fn day_names() {}

#[recurring(
    id = "lower-case-names",
    cron = "0 2 * jan,jul sun",
    zone = "America/New_York"
)]
async fn lower_case_names() {}

#[recurring(id = "steps", cron = "*/15 9-17 * * *", zone = "Asia/Kolkata")]
async fn steps() {}

#[recurring(
    id = "ranges-with-steps",
    cron = "0 8 1-15/2 * *",
    zone = "America/Argentina/Buenos_Aires"
)]
async fn ranges_with_steps() {}

#[recurring(id = "last-day", cron = "0 8 L * *", zone = "Etc/GMT+5")]
async fn last_day() {}

#[recurring(id = "nth-weekday", cron = "0 8 * * 5#2", zone = "US/Pacific")]
async fn nth_weekday() {}

#[recurring(id = "nearest-weekday", cron = "0 8 15W * *", zone = "UTC")]
async fn nearest_weekday() {}

#[recurring(id = "any-day", cron = "0 8 ? * 7")]
async fn any_day() {}

#[recurring(id = "nickname", cron = "@daily")]
async fn nickname() {}

#[recurring(id = "upper-case-nickname", cron = "@HOURLY")]
async fn upper_case_nickname() {}

#[recurring(id = "padded", cron = "  0 8 * * *  ")]
async fn padded() {}

#[recurring(id = "minutes", every = "15m")]
async fn minutes() {}

#[recurring(id = "compound", every = "1h30m")]
async fn compound() {}

#[recurring(id = "millis", every = "500ms")]
async fn millis() {}

#[recurring(id = "days", every = "1d")]
async fn days() {}

#[recurring(id = "spaced-parts", every = "1h 30m")]
async fn spaced_parts() {}

#[recurring(id = "over-two-to-the-32-millis", every = "60d")]
async fn over_two_to_the_32_millis() {}

#[recurring(id = "repeated-units", every = "2h2h")]
async fn repeated_units() {}

#[recurring(id = "zero-and-more", every = "0h90s")]
async fn zero_and_more() {}

#[recurring(id = "leading-zeros", every = "007s")]
async fn leading_zeros() {}

#[recurring(id = "padded-interval", every = " 15m ")]
async fn padded_interval() {}

fn main() {}
