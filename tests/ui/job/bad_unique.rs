use jobs::prelude::*;

#[job(unique = "1 hour")]
async fn spelled_out(account: u64) {
    let _ = account;
}

#[job(unique = "0s")]
async fn zero() {}

#[job(unique = 3600)]
async fn not_a_string() {}

#[job(unique = "1h", unique_key = "tenant-{tenant}")]
async fn unknown_placeholder(tenant_id: u64) {
    let _ = tenant_id;
}

#[job(unique = "1h", unique_key = "tenant-{tenant_id")]
async fn unclosed(tenant_id: u64) {
    let _ = tenant_id;
}

#[job(unique = "1h", unique_states = "waiting")]
async fn unknown_states() {}

#[job(unique_key = "{account}", unique_states = "all")]
async fn key_without_window(account: u64) {
    let _ = account;
}

fn main() {
    let _ = (
        SpelledOut { account: 1 },
        Zero,
        NotAString,
        UnknownPlaceholder { tenant_id: 1 },
        Unclosed { tenant_id: 1 },
        UnknownStates,
        KeyWithoutWindow { account: 1 },
    );
}
