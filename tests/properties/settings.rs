//! Settings files and `JOBS__…` variables: any text is settings or an error, and a
//! value of any type for a known key is accepted or refused with an error that names
//! that key (or the key it goes with) and where the value came from.

use jobs::axum::JobsSettings;
use proptest::prelude::*;

use crate::{cases, text};

/// Every key of the settings, as `section.key` (or `key` at the top).
const KEYS: [&str; 36] = [
    "database_url",
    "database.max_connections",
    "database.acquire_timeout",
    "database.sqlite_synchronous",
    "database.sqlite_readers",
    "database.postgres_durable_commits",
    "database.postgres_schema",
    "background_job_server.enabled",
    "background_job_server.worker_count",
    "background_job_server.prefetch",
    "background_job_server.poll_interval",
    "background_job_server.server_timeout",
    "background_job_server.delete_succeeded_after",
    "background_job_server.delete_deleted_after",
    "background_job_server.shutdown_grace",
    "background_job_server.storage_timeout",
    "background_job_server.capture_backtraces",
    "background_job_server.application",
    "background_job_server.release",
    "background_job_server.only_jobs",
    "background_job_server.fail_unserved_after",
    "background_job_server.queues",
    "background_job_server.queue_limits",
    "background_job_server.global_queue_limits",
    "jobs.default_retries",
    "jobs.backoff_seed",
    "dashboard.enabled",
    "dashboard.port",
    "dashboard.bind",
    "dashboard.username",
    "dashboard.password",
    "dashboard.allowed_hosts",
    "dashboard.read_only_username",
    "dashboard.read_only_password",
    "dashboard.protected_upstream",
    "dashboard.max_event_streams",
];

/// Whether an error about setting `key` alone names it (or an item of it, as in
/// `only_jobs[0]` or `queue_limits.pdf`), or a key that must go with it.
fn names(key: &str, named: &str) -> bool {
    may_name(key).iter().any(|key| {
        named == *key
            || named
                .strip_prefix(key)
                .is_some_and(|rest| rest.starts_with('[') || rest.starts_with('.'))
    })
}

fn may_name(key: &str) -> Vec<&str> {
    let mut keys = vec![key];
    keys.extend(match key {
        "dashboard.username" => &["dashboard.password"][..],
        "dashboard.password" => &["dashboard.username"],
        "dashboard.read_only_username" => &["dashboard.read_only_password"],
        "dashboard.read_only_password" => &["dashboard.read_only_username"],
        // The server timeout defaults to 4 × the poll interval.
        "background_job_server.poll_interval" => &["background_job_server.server_timeout"],
        _ => &[],
    });
    keys
}

/// A TOML string literal of any text.
fn toml_string(text: &str) -> String {
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\t' => quoted.push('\t'),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// A TOML value of any type, written as TOML: text (durations, addresses, names
/// among it), numbers at and past the bounds, booleans, dates, arrays and tables.
fn toml_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        text().prop_map(|text| toml_string(&text)),
        prop::sample::select(&[
            "\"5s\"",
            "\"0s\"",
            "\"1h 30m\"",
            "\"109500000d\"",
            "\"18446744073709551615ms\"",
            "\"0.0.0.0\"",
            "\"::1\"",
            "\"127.0.0.1\"",
            "\"full\"",
            "\"normal\"",
            "\"FULL\"",
            "\"localhost\"",
            "\"jobs.example.com:8443\"",
            "\"sqlite://x.db\"",
            "\"\"",
            "0",
            "1",
            "-1",
            "65535",
            "65536",
            "4294967296",
            "9223372036854775807",
            "1.5",
            "nan",
            "inf",
            "true",
            "false",
            "1979-05-27T07:32:00Z",
            "07:32:00",
        ])
        .prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3)
                .prop_map(|items| format!("[{}]", items.join(", "))),
            // Keys once each: a key given twice is a TOML syntax error, about no key.
            prop::collection::btree_map("[a-z_]{1,6}", inner, 0..3).prop_map(|pairs| {
                let pairs: Vec<String> = pairs
                    .iter()
                    .map(|(key, value)| format!("{key} = {value}"))
                    .collect();
                format!("{{{}}}", pairs.join(", "))
            }),
        ]
    })
}

/// `key = value` in a TOML document, under its section.
fn document(key: &str, value: &str) -> String {
    match key.split_once('.') {
        Some((section, key)) => format!("[{section}]\n{key} = {value}\n"),
        None => format!("{key} = {value}\n"),
    }
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn any_text_is_settings_or_an_error(
        text in prop_oneof![
            text(),
            prop::collection::vec(
                (prop::sample::select(&KEYS[..]), toml_value()),
                0..4,
            )
            .prop_map(|pairs| {
                pairs.iter().map(|(key, value)| document(key, value)).collect::<String>()
            }),
        ],
    ) {
        if let Err(error) = JobsSettings::from_toml(&text) {
            prop_assert!(!error.message().is_empty());
        }
    }

    #[test]
    fn a_value_of_any_type_for_a_key_is_taken_or_refused_naming_the_key(
        key in prop::sample::select(&KEYS[..]),
        value in toml_value(),
    ) {
        let text = document(key, &value);
        if let Err(error) = JobsSettings::from_toml(&text) {
            let named = error.key().unwrap_or_default();
            prop_assert!(names(key, named), "{} = {}: {}", key, value, error);
            prop_assert!(error.to_string().starts_with(named), "{}", error);
        }
    }

    #[test]
    fn a_variable_of_any_text_for_a_key_is_taken_or_refused_naming_the_key_and_variable(
        key in prop::sample::select(&KEYS[..]),
        value in text(),
    ) {
        let variable = format!("JOBS__{}", key.replace('.', "__").to_uppercase());
        let result = JobsSettings::load_from(None, [(variable.clone(), value.clone())]);
        if let Err(error) = result {
            let named = error.key().unwrap_or_default();
            prop_assert!(names(key, named), "{}={:?}: {}", variable, value, error);
            if named.starts_with(key) {
                prop_assert_eq!(error.origin(), Some(variable.as_str()), "{}", error);
            }
        }
    }
}
