use jobs::prelude::*;

#[job(labels = "llm")]
async fn one_string() {}

#[job(labels = llm)]
async fn a_path() {}

#[job(labels = ["llm", tenant_id, 7, concat!("a", "b")])]
async fn mixed(tenant_id: u64) {
    let _ = tenant_id;
}

fn main() {
    let _ = (OneString, APath, Mixed { tenant_id: 7 }.labels());
}
