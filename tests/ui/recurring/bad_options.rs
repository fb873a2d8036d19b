use jobs::prelude::*;

#[recurring(id = "", cron = 8, missed = "catch_up", allow_overlap = "yes")]
async fn bad_values() {}

#[recurring(id = "zero-bound", every = "1h", missed = "catch_up(0)")]
async fn zero_bound() {}

#[recurring(id = "unknown-policy", every = "1h", missed = "sometimes")]
async fn unknown_policy() {}

#[recurring(id = "bad-bound", every = "1h", missed = "catch_up(ten)")]
async fn bad_bound() {}

fn main() {
    let _ = (BadValues, ZeroBound, UnknownPolicy, BadBound);
}
