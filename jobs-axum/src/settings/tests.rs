//! The settings file: parsing, defaults, and errors that name their key.

use super::*;

#[test]
fn debug_hides_passwords() {
    let mut settings = JobsSettings {
        database_url: "postgres://app:secret@db/jobs".into(),
        ..JobsSettings::default()
    };
    settings.dashboard.username = Some("admin".into());
    settings.dashboard.password = Some("hunter2".into());
    let debug = format!("{settings:?}");
    assert!(!debug.contains("secret"), "{debug}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("postgres://app:***@db/jobs"), "{debug}");
}

#[test]
fn server_config_follows_the_settings() {
    let mut settings = JobsSettings::default();
    settings.background_job_server.worker_count = Some(3);
    settings.background_job_server.poll_interval = Duration::from_millis(500);
    settings.jobs.default_retries = 2;
    let config = settings.server_config();
    assert_eq!(config.worker_count, 3);
    assert_eq!(config.poll_interval, Duration::from_millis(500));
    assert_eq!(config.server_timeout, Duration::from_secs(2));
    assert_eq!(config.default_retries, 2);
    assert_eq!(config.prefetch_limit(), 24, "8 × worker_count by default");
    settings.background_job_server.prefetch = Some(0);
    assert_eq!(settings.server_config().prefetch_limit(), 0);
    assert!(
        config.capture_backtraces,
        "backtraces are captured by default"
    );
    let off =
        JobsSettings::from_toml("[background_job_server]\ncapture_backtraces = false\n").unwrap();
    assert!(!off.server_config().capture_backtraces);
}

#[test]
fn rolling_deploy_settings_reach_the_server_config() {
    let settings = JobsSettings::from_toml(
        "[background_job_server]\napplication = \"crm\"\nonly_jobs = []\n\
         only_recurring = []\nfail_unserved_after = \"12h\"\n",
    )
    .unwrap();
    let config = settings.server_config();
    assert_eq!(config.application.as_deref(), Some("crm"));
    assert_eq!(config.only_jobs, Some(Default::default()));
    assert_eq!(config.only_recurring, Some(Default::default()));
    assert_eq!(config.fail_unserved_after, Duration::from_secs(12 * 3600));
    assert_eq!(
        JobsSettings::default().server_config().fail_unserved_after,
        Duration::from_secs(24 * 3600)
    );
    let unknown = JobsSettings::from_toml("[background_job_server]\nonly_jobs = [\"mail.send\"]\n")
        .unwrap_err();
    assert!(
        unknown
            .to_string()
            .contains("background_job_server.only_jobs"),
        "{unknown}"
    );
    let undeclared =
        JobsSettings::from_toml("[background_job_server]\nonly_recurring = [\"nightly\"]\n")
            .unwrap_err();
    assert!(
        undeclared
            .to_string()
            .contains("background_job_server.only_recurring"),
        "{undeclared}"
    );
}

#[test]
fn tool_quotas_reach_the_catalog_and_a_zero_names_its_key() {
    let settings = JobsSettings::from_toml(
        "[tools]\nmax_pending_jobs_per_caller = 7\nmax_recurring_jobs_per_caller = 2\n",
    )
    .unwrap();
    assert_eq!(settings.tools.max_pending_jobs_per_caller, 7);
    assert_eq!(settings.tools.max_recurring_jobs_per_caller, 2);
    assert_eq!(JobsSettings::default().tools, ToolSettings::default());
    for key in [
        "max_pending_jobs_per_caller",
        "max_recurring_jobs_per_caller",
    ] {
        let error = JobsSettings::from_toml(&format!("[tools]\n{key} = 0\n")).unwrap_err();
        assert_eq!(
            error.key(),
            Some(format!("tools.{key}").as_str()),
            "{error}"
        );
    }
    let error = JobsSettings::from_toml("[tools]\nmax_pending_jobs_per_caller = -1\n").unwrap_err();
    assert_eq!(
        error.key(),
        Some("tools.max_pending_jobs_per_caller"),
        "{error}"
    );
}

#[test]
fn every_duration_is_range_checked_with_its_key_named() {
    for key in [
        "delete_succeeded_after",
        "delete_deleted_after",
        "shutdown_grace",
        "storage_timeout",
        "server_timeout",
    ] {
        let text = format!("[background_job_server]\n{key} = \"109500000d\"\n");
        let error = JobsSettings::from_toml(&text).unwrap_err();
        let full = format!("background_job_server.{key}");
        assert_eq!(error.key(), Some(full.as_str()), "{error}");
        assert!(error.message().contains("109500000d"), "{error}");
    }
    let error = JobsSettings::from_toml(
        "[background_job_server]\npoll_interval = \"2d\"\nserver_timeout = \"8d\"\n",
    )
    .unwrap_err();
    assert_eq!(error.key(), Some("background_job_server.poll_interval"));
    let error =
        JobsSettings::from_toml("[background_job_server]\nstorage_timeout = \"0s\"\n").unwrap_err();
    assert_eq!(error.key(), Some("background_job_server.storage_timeout"));
    assert_eq!(error.message(), "must be from 10ms to 1h, not 0ms");
}
