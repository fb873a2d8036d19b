use jobs::prelude::*;

#[recurring(id = "report", cron = "0 8 * * *")]
fn daily_report() {}

#[recurring(id = "cleanup", cron = "0 3 * * *")]
struct Cleanup;

fn main() {}
