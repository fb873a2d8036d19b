//! Settings of the axum plugin that reach the server and the dashboard: allowed hosts,
//! queue limits, served queues and rates, each bad value named with its key.

use std::time::Duration;

use crate::axum_settings::{assert_error, load};

#[test]
fn allowed_hosts_come_from_the_file_or_a_comma_separated_variable() {
    let settings = load(
        Some("[dashboard]\nallowed_hosts = [\"jobs.example.com\"]\nprotected_upstream = true\n"),
        &[],
    )
    .unwrap();
    assert_eq!(settings.dashboard.allowed_hosts, ["jobs.example.com"]);
    let settings = load(
        Some("[dashboard]\nallowed_hosts = [\"jobs.example.com\"]\nprotected_upstream = true\n"),
        &[(
            "JOBS__DASHBOARD__ALLOWED_HOSTS",
            "ops.example.com, ops.example.com:8443",
        )],
    )
    .unwrap();
    assert_eq!(
        settings.dashboard.allowed_hosts,
        ["ops.example.com", "ops.example.com:8443"]
    );
    assert_error(
        load(
            None,
            &[("JOBS__DASHBOARD__ALLOWED_HOSTS", "https://jobs.example.com")],
        ),
        "dashboard.allowed_hosts",
        &["is not a host name", "no scheme"],
    );
    // A public name without credentials, nor anything in front that authenticates.
    assert_error(
        load(
            None,
            &[("JOBS__DASHBOARD__ALLOWED_HOSTS", "jobs.example.com")],
        ),
        "dashboard.allowed_hosts",
        &["without credentials", "dashboard.protected_upstream = true"],
    );
    assert_error(
        load(None, &[("JOBS__DASHBOARD__READ_ONLY_USERNAME", "viewer")]),
        "dashboard.read_only_password",
        &["is required when dashboard.read_only_username is set"],
    );
}

#[test]
fn queue_limits_and_served_queues_reach_the_server_with_a_bad_value_named() {
    let toml = "[background_job_server]\nqueues = [\"llm\", \"pdf\"]\n\
                [background_job_server.queue_limits]\npdf = 2\n\
                [background_job_server.global_queue_limits]\npdf = 5\n";
    let config = load(
        Some(toml),
        &[("JOBS__BACKGROUND_JOB_SERVER__GLOBAL_QUEUE_LIMITS__LLM", "3")],
    )
    .unwrap()
    .server_config();
    assert_eq!(
        config.queues,
        Some(["llm".to_owned(), "pdf".to_owned()].into())
    );
    assert_eq!(config.queue_limits, [("pdf".to_owned(), 2)].into());
    assert_eq!(
        config.global_queue_limits,
        [("llm".to_owned(), 3), ("pdf".to_owned(), 5)].into()
    );
    let key = "background_job_server.global_queue_limits.pdf";
    let zero = "[background_job_server.global_queue_limits]\npdf = 0\n";
    assert_error(load(Some(zero), &[]), key, &["at least 1"]);
    let negative = "[background_job_server.global_queue_limits]\npdf = -5\n";
    assert_error(load(Some(negative), &[]), key, &["-5"]);
    assert_error(
        load(
            None,
            &[("JOBS__BACKGROUND_JOB_SERVER__QUEUE_LIMITS__PDF", "many")],
        ),
        "background_job_server.queue_limits.pdf",
        &["JOBS__BACKGROUND_JOB_SERVER__QUEUE_LIMITS__PDF"],
    );
    let spaced = "[background_job_server.queue_limits]\n\"two words\" = 1\n";
    assert_error(
        load(Some(spaced), &[]),
        "background_job_server.queue_limits.two words",
        &["invalid queue name"],
    );
    assert_error(
        load(Some("[background_job_server]\nqueues = []\n"), &[]),
        "background_job_server.queues",
        &["names no queue"],
    );
}

#[test]
fn queue_rates_reach_the_server_with_a_bad_rate_named() {
    let toml = "[background_job_server.queue_rates]\nllm = \"50/1m\"\n";
    let config = load(
        Some(toml),
        &[("JOBS__BACKGROUND_JOB_SERVER__QUEUE_RATES__MAIL", "20/1s")],
    )
    .unwrap()
    .server_config();
    assert_eq!(
        config.queue_rates,
        [
            (
                "llm".to_owned(),
                jobs::Rate::per(50, Duration::from_secs(60))
            ),
            (
                "mail".to_owned(),
                jobs::Rate::per(20, Duration::from_secs(1))
            ),
        ]
        .into()
    );
    let key = "background_job_server.queue_rates.llm";
    let per_minute = "[background_job_server.queue_rates]\nllm = \"50 per minute\"\n";
    assert_error(
        load(Some(per_minute), &[]),
        key,
        &["invalid rate `50 per minute`", "no `/`"],
    );
    let zero = "[background_job_server.queue_rates]\nllm = \"0/1m\"\n";
    assert_error(load(Some(zero), &[]), key, &["at least 1"]);
    assert_error(
        load(
            None,
            &[("JOBS__BACKGROUND_JOB_SERVER__QUEUE_RATES__LLM", "5/0s")],
        ),
        key,
        &[
            "JOBS__BACKGROUND_JOB_SERVER__QUEUE_RATES__LLM",
            "more than zero",
        ],
    );
    let long = "[background_job_server.queue_rates]\nllm = \"5/2d\"\n";
    assert_error(
        load(Some(long), &[]),
        "background_job_server.queue_rates",
        &["of `llm` must have a period of at most 1d"],
    );
}
