use jobs::prelude::*;

#[job(labels = ["tenant-{tenant_id", "tenant}", "{}", "", " "])]
async fn summarize(tenant_id: u64) {
    let _ = tenant_id;
}

fn main() {
    let _ = Summarize { tenant_id: 7 }.labels();
}
