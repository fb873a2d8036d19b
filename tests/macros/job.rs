//! What `#[job]` generates, checked without a database: the data struct, the registered
//! descriptor, the display name and labels, and (in `tests/ui/job/`) every misuse's error.

use jobs::Job;
use std::time::Duration;

use jobs::prelude::*;
use jobs::{DEFAULT_QUEUE, registered_jobs};
use serde_json::json;

/// The application's state, injected into jobs that take `State<App>`.
#[derive(Debug, Clone)]
pub(crate) struct App;

/// Sends a reminder.
///
/// Second paragraph.
#[job(retries = 5, display = "Send reminder to {user_id}")]
pub(crate) async fn send_reminder(
    State(_app): State<App>,
    _ctx: JobContext,
    user_id: u64,
    /// What the reminder says.
    text: String,
) -> anyhow::Result<()> {
    anyhow::ensure!(!text.is_empty(), "reminder {user_id} has no text");
    Ok(())
}

#[job(name = "inbox.summarize")]
async fn summarize_inbox(_ctx: JobContext) {}

#[job(display = "Digest {{week {week:02}}} for {type:?}")]
async fn weekly_digest(week: u8, r#type: String, #[serde(default)] dry_run: bool) {
    let _ = (week, r#type, dry_run);
}

#[job(
    queue = "llm.summaries",
    priority = -5,
    timeout = "1h30m",
    labels = ["tenant-{tenant_id}", "doc {{{document_id:>4}}}", "llm"]
)]
async fn summarize_document(tenant_id: u64, document_id: u32) {
    let _ = (tenant_id, document_id);
}

#[job(priority = -2147483648, timeout = "250ms", labels = [])]
async fn least_urgent() {}

#[job(priority = 2147483647, labels = ["urgent"])]
async fn most_urgent() {}

/// The job options of a recurring job, given with `#[job]`, hold for its runs too.
#[recurring(id = "macros.nightly-report", cron = "0 3 * * *")]
#[job(queue = "reports", timeout = "2h", labels = ["nightly", "{{report}}"])]
async fn nightly_report() {}

/// A job named through `crate = "…"`, as a crate that re-exports `jobs` would write it.
mod renamed {
    pub(crate) use jobs as my_jobs;

    #[jobs::job(crate = "self::my_jobs")]
    pub(crate) async fn rebuild_index(shard: u32) -> Result<(), std::io::Error> {
        let _ = shard;
        Ok(())
    }
}

#[test]
fn data_struct_holds_the_data_parameters_in_order() {
    let job = SendReminder {
        user_id: 7,
        text: "call mum".to_owned(),
    };
    let encoded = serde_json::to_value(&job).unwrap();
    assert_eq!(encoded, json!({ "user_id": 7, "text": "call mum" }));
    let decoded: SendReminder = serde_json::from_value(encoded).unwrap();
    assert_eq!((decoded.user_id, decoded.text.as_str()), (7, "call mum"));
    assert_eq!(
        format!("{job:?}"),
        r#"SendReminder { user_id: 7, text: "call mum" }"#
    );
}

#[test]
fn a_job_without_data_is_a_unit_struct_stored_as_null() {
    let encoded = serde_json::to_string(&SummarizeInbox).unwrap();
    assert_eq!(encoded, "null");
    let SummarizeInbox = serde_json::from_str(&encoded).unwrap();
}

#[test]
fn serde_attributes_of_parameters_apply_to_fields() {
    // A parameter added with `#[serde(default)]` still decodes payloads stored before it.
    let digest: WeeklyDigest = serde_json::from_value(json!({ "week": 3, "type": "x" })).unwrap();
    assert!(!digest.dry_run);
}

#[test]
fn registered_name_defaults_to_the_module_path_and_can_be_pinned() {
    assert_eq!(
        <SendReminder as Job>::DESCRIPTOR.name(),
        "macros::job::send_reminder"
    );
    assert_eq!(
        <SummarizeInbox as Job>::DESCRIPTOR.name(),
        "inbox.summarize"
    );
    assert_eq!(
        <renamed::RebuildIndex as Job>::DESCRIPTOR.name(),
        "macros::job::renamed::rebuild_index"
    );
}

#[test]
fn retries_are_set_only_when_asked_for() {
    assert_eq!(<SendReminder as Job>::DESCRIPTOR.retries_setting(), Some(5));
    assert_eq!(<SummarizeInbox as Job>::DESCRIPTOR.retries_setting(), None);
}

#[test]
fn display_name_renders_the_template_or_defaults_to_the_fn_name() {
    let reminder = SendReminder {
        user_id: 42,
        text: String::new(),
    };
    assert_eq!(reminder.display_name(), "Send reminder to 42");
    assert_eq!(SummarizeInbox.display_name(), "summarize_inbox");
    let digest = WeeklyDigest {
        week: 7,
        r#type: "team".to_owned(),
        dry_run: false,
    };
    assert_eq!(digest.display_name(), r#"Digest {week 07} for "team""#);
    assert_eq!(
        renamed::RebuildIndex { shard: 1 }.display_name(),
        "rebuild_index"
    );
}

/// Ten calls a minute per tenant, any number at once.
#[job(concurrency_key = "tenant-{tenant_id}", rate = "10/1m")]
async fn call_tenant_api(tenant_id: u64) {
    let _ = tenant_id;
}

/// Two at a time and a hundred an hour per partner.
#[job(
    concurrency_key = "partner-{partner_id}",
    concurrency = 2,
    rate = "100/1h"
)]
async fn call_partner_api(partner_id: u64) {
    let _ = partner_id;
}

#[test]
fn a_rate_per_key_reaches_the_descriptor_with_or_without_a_concurrency() {
    let tenant = <CallTenantApi as Job>::DESCRIPTOR;
    assert!(tenant.is_keyed());
    assert_eq!(tenant.concurrency_setting(), None, "any number at once");
    assert_eq!(
        tenant.key_rate_setting(),
        Some(jobs::Rate::per(10, Duration::from_secs(60)))
    );
    assert_eq!(
        CallTenantApi { tenant_id: 7 }.concurrency_key().as_deref(),
        Some("tenant-7")
    );
    let partner = <CallPartnerApi as Job>::DESCRIPTOR;
    assert_eq!(partner.concurrency_setting(), Some(2));
    assert_eq!(
        partner.key_rate_setting(),
        Some(jobs::Rate::per(100, Duration::from_secs(3600)))
    );
    let reminder = <SendReminder as Job>::DESCRIPTOR;
    assert!(!reminder.is_keyed());
    assert_eq!(reminder.key_rate_setting(), None);
}

#[test]
fn queue_priority_and_timeout_reach_the_descriptor() {
    let summarize = <SummarizeDocument as Job>::DESCRIPTOR;
    assert_eq!(summarize.queue_name(), "llm.summaries");
    assert_eq!(summarize.priority_setting(), -5);
    assert_eq!(summarize.timeout_setting(), Some(Duration::from_secs(5400)));

    let least = <LeastUrgent as Job>::DESCRIPTOR;
    assert_eq!(least.queue_name(), DEFAULT_QUEUE);
    assert_eq!(least.priority_setting(), i32::MIN);
    assert_eq!(least.timeout_setting(), Some(Duration::from_millis(250)));
    assert_eq!(<MostUrgent as Job>::DESCRIPTOR.priority_setting(), i32::MAX);

    let nightly = <NightlyReport as Job>::DESCRIPTOR;
    assert_eq!(nightly.queue_name(), "reports");
    assert_eq!(nightly.timeout_setting(), Some(Duration::from_secs(7200)));
}

#[test]
fn without_the_options_the_runtime_defaults_hold() {
    for descriptor in [
        <SendReminder as Job>::DESCRIPTOR,
        <SummarizeInbox as Job>::DESCRIPTOR,
        <MostUrgent as Job>::DESCRIPTOR,
    ] {
        assert_eq!(
            descriptor.queue_name(),
            DEFAULT_QUEUE,
            "{}",
            descriptor.name()
        );
        assert_eq!(descriptor.timeout_setting(), None, "{}", descriptor.name());
    }
    assert_eq!(<SendReminder as Job>::DESCRIPTOR.priority_setting(), 0);
    assert_eq!(<SummarizeInbox as Job>::DESCRIPTOR.priority_setting(), 0);
    let reminder = SendReminder {
        user_id: 1,
        text: String::new(),
    };
    assert!(reminder.labels().is_empty());
    assert!(SummarizeInbox.labels().is_empty());
    assert!(
        LeastUrgent.labels().is_empty(),
        "`labels = []` is no labels"
    );
}

#[test]
fn labels_render_their_templates_for_each_run() {
    let job = SummarizeDocument {
        tenant_id: 7,
        document_id: 42,
    };
    assert_eq!(job.labels(), ["tenant-7", "doc {  42}", "llm"]);
    let job = SummarizeDocument {
        tenant_id: 12,
        document_id: 3,
    };
    assert_eq!(job.labels(), ["tenant-12", "doc {   3}", "llm"]);
    assert_eq!(MostUrgent.labels(), ["urgent"]);
    assert_eq!(NightlyReport.labels(), ["nightly", "{report}"]);
}

#[test]
fn every_job_is_registered_through_inventory() {
    let registered = registered_jobs();
    for name in [
        "macros::job::send_reminder",
        "inbox.summarize",
        "macros::job::weekly_digest",
        "macros::job::renamed::rebuild_index",
    ] {
        assert!(
            registered.contains(&name),
            "{name} missing from {registered:?}"
        );
    }
}

#[tokio::test]
async fn the_fn_is_emitted_unchanged() {
    renamed::rebuild_index(1).await.unwrap();
}

mod shapes {
    use jobs::Job;
    use jobs::prelude::*;

    mod v1 {
        use super::*;
        #[job(name = "shapes.v1.invoice")]
        pub(super) async fn invoice(order: u64, note: String) {
            let _ = (order, note);
        }
    }

    mod v2 {
        use super::*;
        /// The same data, written the same way: the same shape, whatever the name.
        #[job(name = "shapes.v2.invoice")]
        pub(super) async fn invoice(order: u64, note: String) {
            let _ = (order, note);
        }

        /// A field's type changed.
        #[job(name = "shapes.v2.invoice_wide")]
        pub(super) async fn invoice_wide(order: u128, note: String) {
            let _ = (order, note);
        }

        /// A field renamed for serde only.
        #[job(name = "shapes.v2.invoice_renamed")]
        pub(super) async fn invoice_renamed(#[serde(rename = "id")] order: u64, note: String) {
            let _ = (order, note);
        }
    }

    #[test]
    fn the_shape_of_a_jobs_data_changes_with_its_fields_only() {
        let shape = |descriptor: jobs::JobDescriptor| descriptor.shape_setting();
        let v1 = shape(<v1::Invoice as Job>::DESCRIPTOR);
        assert_eq!(v1.len(), 16, "{v1}");
        assert_eq!(v1, shape(<v2::Invoice as Job>::DESCRIPTOR));
        assert_ne!(v1, shape(<v2::InvoiceWide as Job>::DESCRIPTOR));
        assert_ne!(v1, shape(<v2::InvoiceRenamed as Job>::DESCRIPTOR));
    }
}
