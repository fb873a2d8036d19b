use jobs::prelude::*;

#[job(concurrency_key = "tenant-{tenant}")]
async fn unknown_placeholder(tenant_id: u64) {
    let _ = tenant_id;
}

#[job(concurrency_key = "tenant-{tenant_id}", concurrency = 0)]
async fn zero(tenant_id: u64) {
    let _ = tenant_id;
}

#[job(concurrency_key = "tenant-{tenant_id}", concurrency = "2")]
async fn not_a_number(tenant_id: u64) {
    let _ = tenant_id;
}

#[job(concurrency = 2)]
async fn limit_without_key(tenant_id: u64) {
    let _ = tenant_id;
}

#[job(concurrency_key = 7)]
async fn key_not_a_string(tenant_id: u64) {
    let _ = tenant_id;
}

fn main() {
    let _ = (
        UnknownPlaceholder { tenant_id: 1 },
        Zero { tenant_id: 1 },
        NotANumber { tenant_id: 1 },
        LimitWithoutKey { tenant_id: 1 },
        KeyNotAString { tenant_id: 1 },
    );
}
