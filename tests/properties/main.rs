//! Property tests of every input an outsider controls, through the library's real entry
//! points on real databases: the dashboard API's query parameters, paths and bodies
//! (`api`), agent tool-call arguments against the jobs' schemas (`tools`), stored
//! payloads that no longer decode (`payloads`), settings files and variables
//! (`settings`), and unique jobs' arguments against a model of the rule (`unique`). The strings of schedules have theirs in `jobs-grammar` and in
//! `jobs-core`'s recurring module.
//!
//! Each property runs a number of cases that keeps the binary under a minute on two
//! cores; `PROPTEST_CASES=<n>` runs `n` cases of each instead (README, "Security").

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod api;
mod payloads;
mod settings;
mod tools;
mod unique;

use proptest::test_runner::Config;

/// `cases` cases, unless `PROPTEST_CASES` says otherwise.
fn cases(cases: u32) -> Config {
    Config::with_cases(cases)
}

/// A runtime for a property's cases, each of which blocks on it.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Text of every kind: any Unicode, and the characters that quoting, `LIKE` patterns,
/// URLs and JSON treat specially.
fn text() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    prop_oneof![
        any::<String>(),
        "[%_\\\\'\"<>&=?#/+. \t\n\0a-zA-Z0-9éÉ日😀-]{0,12}",
    ]
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |n| serde_json::Number::from_f64(n)
            .map(Value::Number)),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}
