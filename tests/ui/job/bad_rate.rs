use jobs::prelude::*;

#[job(concurrency_key = "tenant-{tenant_id}", rate = "10 per minute")]
async fn not_a_rate(tenant_id: u64) {
    let _ = tenant_id;
}

#[job(concurrency_key = "tenant-{tenant_id}", rate = "0/1m")]
async fn no_starts(tenant_id: u64) {
    let _ = tenant_id;
}

#[job(concurrency_key = "tenant-{tenant_id}", rate = "10/2d")]
async fn longer_than_a_day(tenant_id: u64) {
    let _ = tenant_id;
}

#[job(concurrency_key = "tenant-{tenant_id}", rate = 10)]
async fn not_a_string(tenant_id: u64) {
    let _ = tenant_id;
}

#[job(rate = "10/1m")]
async fn rate_without_key(tenant_id: u64) {
    let _ = tenant_id;
}

fn main() {
    let _ = (
        NotARate { tenant_id: 1 },
        NoStarts { tenant_id: 1 },
        LongerThanADay { tenant_id: 1 },
        NotAString { tenant_id: 1 },
        RateWithoutKey { tenant_id: 1 },
    );
}
