use jobs::prelude::*;

#[job(labels = ["llm", "tenant-{tenant_id}", "llm", r"tenant-{tenant_id}"])]
async fn summarize(tenant_id: u64) {
    let _ = tenant_id;
}

fn main() {
    let _ = Summarize { tenant_id: 7 }.labels();
}
