//! A crate with strict lints: what `#[job]` generates adds no warning to it.
#![deny(warnings, missing_docs, unreachable_pub, missing_debug_implementations)]
#![forbid(unsafe_code)]

use jobs::prelude::*;

/// State shared with the jobs.
#[derive(Debug, Clone)]
pub struct App;

/// Sends a reminder.
#[job(retries = 5, display = "Send reminder to {user_id}")]
pub async fn send_reminder(
    State(_app): State<App>,
    ctx: JobContext,
    user_id: u64,
    text: String,
) -> anyhow::Result<()> {
    let _ = (ctx.attempt(), user_id, text);
    Ok(())
}

/// Summarizes the inbox.
#[job(name = "inbox.summarize")]
pub async fn summarize_inbox() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Ok(())
}

/// Summarizes a document with a model.
#[job(
    queue = "llm",
    priority = -5,
    timeout = "5m",
    labels = ["tenant-{tenant_id}", "doc-{document_id:?}", "llm"]
)]
pub async fn summarize(tenant_id: u64, document_id: String) {
    let _ = (tenant_id, document_id);
}

/// Rebuilds a tenant's index, once at a time per tenant.
#[job(unique = "10m", unique_key = "tenant-{tenant_id}", unique_states = "incomplete")]
pub async fn rebuild_index(tenant_id: u64, reason: String) {
    let _ = (tenant_id, reason);
}

/// Syncs a tenant's data, two syncs of one tenant at a time.
#[job(concurrency_key = "tenant-{tenant_id}", concurrency = 2)]
pub async fn sync_tenant(tenant_id: u64) {
    let _ = tenant_id;
}

/// Calls a tenant's API, at most ten times a minute per tenant, two at a time.
#[job(concurrency_key = "tenant-{tenant_id}", concurrency = 2, rate = "10/1m")]
pub async fn call_tenant_api(tenant_id: u64) {
    let _ = tenant_id;
}

/// Calls a partner's API, at most a hundred times an hour per partner.
#[job(concurrency_key = "partner-{partner_id}", rate = "100/1h")]
pub async fn call_partner_api(partner_id: u64) {
    let _ = partner_id;
}

#[job(labels = ["private"])]
async fn private_job(week: u32) {
    let _ = week;
}

fn main() {
    let _ = (
        SendReminder {
            user_id: 1,
            text: String::new(),
        },
        SummarizeInbox,
        Summarize {
            tenant_id: 1,
            document_id: String::new(),
        },
        PrivateJob { week: 1 },
        RebuildIndex {
            tenant_id: 1,
            reason: String::new(),
        },
        SyncTenant { tenant_id: 1 },
        CallTenantApi { tenant_id: 1 },
        CallPartnerApi { partner_id: 1 },
    );
}
