//! The JSON Schema `#[job]` derives for a job's data, and which jobs the catalog offers.

use jobs::Job;
use serde_json::{Value, json};

use super::*;

fn schema_of<J: Job>() -> Value {
    J::DESCRIPTOR.schema_setting().expect("a schema fn")().expect("a schema")
}

#[test]
fn schema_describes_the_data_parameters() {
    let schema = schema_of::<SendReminder>();
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["description"], "Reminds a user of something.");
    assert_eq!(
        schema["properties"]["user_id"]["description"],
        "The user to remind."
    );
    assert_eq!(schema["properties"]["user_id"]["type"], "integer");
    assert_eq!(schema["additionalProperties"], false);
    let mut required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap())
        .collect();
    required.sort_unstable();
    assert_eq!(required, ["channel", "tags", "text", "user_id"]);
    assert!(schema["$defs"]["Channel"].is_object(), "{schema:#}");
}

#[test]
fn jobs_without_a_schema_or_opted_out_are_not_tools() {
    let schema = OpaqueJob::DESCRIPTOR.schema_setting().expect("a schema fn")();
    assert_eq!(
        schema.unwrap_err(),
        "the type of `value` does not implement `schemars::JsonSchema`"
    );
    assert!(!PrivateJob::DESCRIPTOR.is_tool());
}

#[tokio::test]
async fn schema_follows_serde_renames_and_skips() {
    let schema = schema_of::<RenamedJob>();
    assert_eq!(schema["required"], json!(["userId"]));
    assert!(schema["properties"].get("cache").is_none(), "{schema}");
    let (_db, jobs, _clock) = setup(Backend::Sqlite).await;
    let catalog = ToolCatalog::new(jobs.clone()).allow::<RenamedJob>();
    let result = catalog
        .call_tool("run_renamed_job", json!({"userId": 3}), "u1")
        .await
        .unwrap();
    let ToolResult::Enqueued { job_id, .. } = result else {
        panic!("{result:?}")
    };
    assert_eq!(
        jobs.get(job_id).await.unwrap().payload,
        json!({"userId": 3})
    );
    let error = catalog
        .call_tool("run_renamed_job", json!({"user_id": 3}), "u1")
        .await
        .unwrap_err();
    assert_eq!(error.field.as_deref(), Some("/userId"));
}

#[tokio::test]
async fn clashing_tool_names_are_left_out_until_renamed() {
    let (_db, jobs, _clock) = setup(Backend::Sqlite).await;
    let names = |catalog: &ToolCatalog| -> Vec<String> {
        catalog.tools().into_iter().map(|tool| tool.name).collect()
    };
    let clashing = ToolCatalog::new(jobs.clone())
        .allow::<AnalyzeDocument>()
        .allow::<archive::AnalyzeDocument>();
    assert_eq!(
        names(&clashing),
        [
            "run_analyze_document",
            "schedule_analyze_document",
            "list_recurring_jobs",
            "delete_job"
        ]
    );

    let renamed = ToolCatalog::new(jobs.clone())
        .allow::<AnalyzeDocument>()
        .allow_recurring_as::<archive::AnalyzeDocument>("archive_document");
    assert_eq!(
        names(&renamed),
        [
            "run_analyze_document",
            "schedule_analyze_document",
            "run_archive_document",
            "schedule_archive_document",
            "schedule_archive_document_recurring",
            "list_recurring_jobs",
            "delete_job"
        ]
    );
    for (tool, job) in [
        ("run_analyze_document", AnalyzeDocument::DESCRIPTOR.name()),
        (
            "run_archive_document",
            archive::AnalyzeDocument::DESCRIPTOR.name(),
        ),
    ] {
        let result = renamed
            .call_tool(tool, json!({"document_id": 42}), "u1")
            .await
            .unwrap();
        let ToolResult::Enqueued { job_id, .. } = result else {
            panic!("{result:?}")
        };
        assert_eq!(jobs.get(job_id).await.unwrap().name, job, "{tool}");
    }
}

#[test]
#[should_panic(expected = "tool name `send reminder`: use 1 to 45 ASCII letters")]
fn a_tool_name_models_refuse_is_a_panic_at_startup() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (_db, jobs, _clock) = runtime.block_on(setup(Backend::Sqlite));
    let _ = ToolCatalog::new(jobs).allow_as::<SendReminder>("send reminder");
}

/// Values around the schema's edges: each validates exactly when serde_json decodes it.
#[tokio::test]
async fn schema_accepts_exactly_what_serde_decodes() {
    let (_db, jobs, _clock) = setup(Backend::Sqlite).await;
    let catalog = catalog(&jobs);
    let with = |patch: Value| {
        let mut args = reminder_args();
        for (key, value) in patch.as_object().unwrap() {
            if value == &json!("<remove>") {
                args.as_object_mut().unwrap().remove(key);
            } else {
                args[key] = value.clone();
            }
        }
        args
    };
    let cases = [
        reminder_args(),
        with(json!({"priority": "<remove>", "repeat": "<remove>"})),
        with(json!({"priority": 3, "repeat": 2})),
        with(json!({"priority": 256})),
        with(json!({"priority": -1})),
        with(json!({"user_id": 7.5})),
        with(json!({"user_id": "7"})),
        with(json!({"user_id": "<remove>"})),
        with(json!({"tags": [1]})),
        with(json!({"tags": []})),
        with(json!({"tags": "family"})),
        with(json!({"channel": {"kind": "sms", "address": "+32"}})),
        with(json!({"channel": {"kind": "fax", "address": "+32"}})),
        with(json!({"channel": {"kind": {"webhook": {"secret": "s"}}, "address": "u"}})),
        with(json!({"channel": {"kind": {"webhook": {}}, "address": "u"}})),
        with(json!({"channel": {"kind": {"webhook": {"secret": 1}}, "address": "u"}})),
        with(json!({"channel": {"kind": "email"}})),
        json!([]),
    ];
    for args in cases {
        let decodes = serde_json::from_value::<SendReminder>(args.clone()).is_ok();
        let before = jobs.count_by_state().await.unwrap();
        let called = catalog
            .call_tool("run_send_reminder", args.clone(), "u1")
            .await;
        assert_eq!(called.is_ok(), decodes, "{args}: {called:?}");
        if let Err(error) = called {
            assert_eq!(error.kind, ToolErrorKind::InvalidArguments, "{args}");
            assert_eq!(jobs.count_by_state().await.unwrap(), before, "{args}");
        }
    }
    // Stricter than serde on purpose: an argument the tool does not have is a misnamed
    // one, which serde would silently drop.
    let error = catalog
        .call_tool("run_send_reminder", with(json!({"user_tag": 1})), "u1")
        .await
        .unwrap_err();
    assert_eq!(error.field.as_deref(), Some("/user_tag"));
    assert!(
        error
            .message
            .starts_with("`/user_tag` is not an argument of this tool"),
        "{error:?}"
    );
}
