use jobs::prelude::*;

#[job(labels = ["tenant-{tenant}", "llm", "doc-{document_id}-{ctx}"])]
async fn summarize(ctx: JobContext, tenant_id: u64, document_id: u32) {
    let _ = (ctx, tenant_id, document_id);
}

// A recurring job has no data, so its labels are fixed text.
#[recurring(id = "nightly", cron = "0 3 * * *")]
#[job(labels = ["nightly", "tenant-{tenant_id}"])]
async fn nightly_report() {}

fn main() {
    let _ = (
        Summarize {
            tenant_id: 7,
            document_id: 1,
        }
        .labels(),
        NightlyReport.labels(),
    );
}
