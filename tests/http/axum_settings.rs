//! Settings of the axum plugin: defaults, a TOML file, `JOBS__…` variables over it, and
//! errors that name the bad key and where it came from.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use jobs::SqliteSynchronous;
use jobs::axum::{JobsSettings, SettingsError};

/// Loads `toml` (as a file) with `vars` as the whole environment.
pub(crate) fn load(
    toml: Option<&str>,
    vars: &[(&str, &str)],
) -> Result<JobsSettings, SettingsError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.toml");
    if let Some(toml) = toml {
        std::fs::write(&path, toml).unwrap();
    }
    JobsSettings::load_from(Some(&path), vars.iter().copied())
}

#[track_caller]
pub(crate) fn assert_error(
    result: Result<JobsSettings, SettingsError>,
    key: &str,
    needles: &[&str],
) {
    let error = result.expect_err("settings should be rejected");
    let text = error.to_string();
    println!("{text}");
    assert_eq!(error.key(), Some(key), "{text}");
    assert!(text.starts_with(&format!("{key}: ")), "{text}");
    for needle in needles {
        assert!(text.contains(needle), "{text:?} lacks {needle:?}");
    }
}

#[test]
fn defaults_are_jobrunrs() {
    let settings = JobsSettings::default();
    assert_eq!(settings.database_url, "sqlite://jobs.db");
    let server = &settings.background_job_server;
    assert!(server.enabled);
    assert_eq!(server.worker_count, None);
    assert_eq!(server.poll_interval, Duration::from_secs(5));
    assert_eq!(server.server_timeout(), Duration::from_secs(20));
    assert_eq!(
        server.delete_succeeded_after,
        Duration::from_secs(36 * 3600)
    );
    assert_eq!(server.delete_deleted_after, Duration::from_secs(72 * 3600));
    assert_eq!(server.shutdown_grace, Duration::from_secs(10));
    assert_eq!(settings.jobs.default_retries, 10);
    assert_eq!(settings.jobs.backoff_seed, 0);
    let dashboard = &settings.dashboard;
    assert!(dashboard.enabled);
    assert_eq!(dashboard.port, 8000);
    assert_eq!(dashboard.bind, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!((&dashboard.username, &dashboard.password), (&None, &None));
    let database = &settings.database;
    assert_eq!(database.max_connections, 10);
    assert_eq!(database.acquire_timeout, Duration::from_secs(30));
    assert_eq!(database.sqlite_synchronous, SqliteSynchronous::Normal);
    assert_eq!(database.sqlite_readers, 4);
    assert_eq!(settings.connect_options(), jobs::ConnectOptions::default());

    // No file and no variables: the defaults, checked.
    assert_eq!(load(None, &[]).unwrap(), settings);
    assert_eq!(JobsSettings::from_toml("").unwrap(), settings);
    settings.validate().unwrap();
}

#[test]
fn a_file_sets_what_it_names_and_leaves_the_rest() {
    let settings = load(
        Some(
            r#"
            database_url = "sqlite:///var/lib/app/jobs.db"

            [database]
            max_connections = 25
            acquire_timeout = "5s"
            sqlite_synchronous = "full"
            sqlite_readers = 2

            [background_job_server]
            worker_count = 50
            prefetch = 20
            poll_interval = "500ms"
            server_timeout = "1m"
            delete_succeeded_after = "1h 30m"
            shutdown_grace = "30s"

            [jobs]
            default_retries = 3
            backoff_seed = 42

            [dashboard]
            port = 9000
            bind = "0.0.0.0"
            username = "admin"
            password = "s3cret"
            "#,
        ),
        &[],
    )
    .unwrap();
    assert_eq!(settings.database_url, "sqlite:///var/lib/app/jobs.db");
    let options = settings.connect_options();
    assert_eq!(options.max_connections, 25);
    assert_eq!(options.acquire_timeout, Duration::from_secs(5));
    assert_eq!(options.sqlite_synchronous, SqliteSynchronous::Full);
    assert_eq!(options.sqlite_readers, 2);
    let server = &settings.background_job_server;
    assert_eq!(server.worker_count, Some(50));
    assert_eq!(server.poll_interval, Duration::from_millis(500));
    assert_eq!(server.server_timeout(), Duration::from_secs(60));
    assert_eq!(server.delete_succeeded_after, Duration::from_secs(5400));
    assert_eq!(server.delete_deleted_after, Duration::from_secs(72 * 3600));
    assert_eq!(server.shutdown_grace, Duration::from_secs(30));
    assert_eq!(settings.jobs.default_retries, 3);
    assert_eq!(settings.jobs.backoff_seed, 42);
    assert_eq!(settings.dashboard.port, 9000);
    assert_eq!(settings.dashboard.bind, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(settings.dashboard.username.as_deref(), Some("admin"));
    assert_eq!(settings.dashboard.password.as_deref(), Some("s3cret"));

    let config = settings.server_config();
    assert_eq!(config.worker_count, 50);
    assert_eq!(config.prefetch_limit(), 20);
    assert_eq!(config.poll_interval, Duration::from_millis(500));
    assert_eq!(config.server_timeout, Duration::from_secs(60));
    assert_eq!(config.shutdown_grace, Duration::from_secs(30));
    assert_eq!(config.default_retries, 3);
    assert_eq!(config.backoff_seed, 42);
}

#[test]
fn environment_variables_override_the_file() {
    let settings = load(
        Some("[background_job_server]\nworker_count = 5\npoll_interval = \"2s\"\n"),
        &[
            ("JOBS__BACKGROUND_JOB_SERVER__WORKER_COUNT", "50"),
            ("JOBS__DASHBOARD__PORT", "9100"),
            ("JOBS__DASHBOARD__ENABLED", "false"),
            ("JOBS__DATABASE_URL", "sqlite://other.db"),
            ("JOBS__JOBS__DEFAULT_RETRIES", "4"),
            ("JOBS__DATABASE__SQLITE_SYNCHRONOUS", "full"),
            ("JOBS__DATABASE__MAX_CONNECTIONS", "3"),
            // Typed by the field: a numeric password stays the string it was.
            ("JOBS__DASHBOARD__USERNAME", "007"),
            ("JOBS__DASHBOARD__PASSWORD", "0x1F"),
            // Not ours: ignored.
            ("JOBS_DASHBOARD_PORT", "1"),
            ("PATH", "/usr/bin"),
        ],
    )
    .unwrap();
    assert_eq!(settings.background_job_server.worker_count, Some(50));
    assert_eq!(
        settings.background_job_server.poll_interval,
        Duration::from_secs(2)
    );
    assert_eq!(settings.dashboard.port, 9100);
    assert!(!settings.dashboard.enabled);
    assert_eq!(settings.database_url, "sqlite://other.db");
    assert_eq!(settings.jobs.default_retries, 4);
    assert_eq!(
        settings.database.sqlite_synchronous,
        SqliteSynchronous::Full
    );
    assert_eq!(settings.database.max_connections, 3);
    assert_eq!(settings.dashboard.username.as_deref(), Some("007"));
    assert_eq!(settings.dashboard.password.as_deref(), Some("0x1F"));
}

#[test]
fn settings_embed_in_an_apps_own_configuration() {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct AppConfig {
        port: u16,
        #[serde(default)]
        jobs: JobsSettings,
    }
    let config: AppConfig = toml_like(
        r#"{"port": 3000, "jobs": {"dashboard": {"port": 8080}, "background_job_server": {"poll_interval": "1s"}}}"#,
    );
    assert_eq!(config.port, 3000);
    assert_eq!(config.jobs.dashboard.port, 8080);
    assert_eq!(
        config.jobs.background_job_server.poll_interval,
        Duration::from_secs(1)
    );
    let config: AppConfig = toml_like(r#"{"port": 3000}"#);
    assert_eq!(config.jobs, JobsSettings::default());

    let error = serde_json::from_str::<AppConfig>(
        r#"{"port": 3000, "jobs": {"background_job_server": {"poll_interval": "5 parsecs"}}}"#,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        error.contains("invalid duration `5 parsecs`: `parsecs` is not a unit"),
        "{error}"
    );
}

/// Any serde format works for embedding; JSON keeps this test free of another parser.
fn toml_like<T: serde::de::DeserializeOwned>(json: &str) -> T {
    serde_json::from_str(json).unwrap()
}

#[test]
fn an_unknown_key_is_named_in_full() {
    assert_error(
        load(Some("[background_job_server]\nworker_countt = 5\n"), &[]),
        "background_job_server.worker_countt",
        &[
            "unknown field `worker_countt`",
            "expected one of",
            "jobs.toml",
        ],
    );
    assert_error(
        load(Some("databse_url = \"sqlite://x.db\"\n"), &[]),
        "databse_url",
        &["unknown field `databse_url`"],
    );
    assert_error(
        load(None, &[("JOBS__DASHBOARD__COLOUR", "blue")]),
        "dashboard.colour",
        &["unknown field `colour`", "(from JOBS__DASHBOARD__COLOUR)"],
    );
}

#[test]
fn a_bad_duration_is_named_with_its_value() {
    let result = load(
        Some("[background_job_server]\npoll_interval = \"5 parsecs\"\n"),
        &[],
    );
    assert_error(
        result,
        "background_job_server.poll_interval",
        &[
            "invalid duration `5 parsecs`: `parsecs` is not a unit",
            "jobs.toml",
        ],
    );
    assert_error(
        load(
            None,
            &[("JOBS__BACKGROUND_JOB_SERVER__SHUTDOWN_GRACE", "soon")],
        ),
        "background_job_server.shutdown_grace",
        &[
            "invalid duration `soon`: expected a number at `soon`",
            "(from JOBS__BACKGROUND_JOB_SERVER__SHUTDOWN_GRACE)",
        ],
    );
    assert_error(
        JobsSettings::from_toml("[background_job_server]\nshutdown_grace = 10\n"),
        "background_job_server.shutdown_grace",
        &[
            "invalid type: integer `10`",
            r#"expected a duration such as "500ms""#,
        ],
    );
}

#[test]
fn a_bad_port_is_named() {
    assert_error(
        load(Some("[dashboard]\nport = 70000\n"), &[]),
        "dashboard.port",
        &["70000", "u16"],
    );
    assert_error(
        load(None, &[("JOBS__DASHBOARD__PORT", "eighty")]),
        "dashboard.port",
        &[r#""eighty""#, "(from JOBS__DASHBOARD__PORT)"],
    );
    assert_error(
        load(Some("[dashboard]\nport = \"8000\"\n"), &[]),
        "dashboard.port",
        &["invalid type: string"],
    );
    assert_error(
        load(None, &[("JOBS__DASHBOARD__BIND", "localhost")]),
        "dashboard.bind",
        &["invalid IP address syntax"],
    );
}

#[test]
fn other_bad_values_are_named() {
    assert_error(
        load(None, &[("JOBS__DASHBOARD__ENABLED", "yes")]),
        "dashboard.enabled",
        &[r#""yes""#, "a boolean"],
    );
    assert_error(
        load(None, &[("JOBS__BACKGROUND_JOB_SERVER__WORKER_COUNT", "0")]),
        "background_job_server.worker_count",
        &[
            "must be at least 1",
            "(from JOBS__BACKGROUND_JOB_SERVER__WORKER_COUNT)",
        ],
    );
    assert_error(
        load(
            Some("[background_job_server]\npoll_interval = \"10s\"\nserver_timeout = \"5s\"\n"),
            &[],
        ),
        "background_job_server.server_timeout",
        &["must be longer than background_job_server.poll_interval"],
    );
    assert_error(
        load(Some("dashboard = 5\n"), &[]),
        "dashboard",
        &["invalid type: integer `5`"],
    );
    assert_error(
        load(
            None,
            &[("JOBS__DASHBOARD", "x"), ("JOBS__DASHBOARD__PORT", "1")],
        ),
        "dashboard",
        &["JOBS__DASHBOARD__PORT cannot set a key inside it"],
    );
}

#[test]
fn bad_connection_settings_are_named() {
    assert_error(
        load(None, &[("JOBS__DATABASE__SQLITE_SYNCHRONOUS", "extra")]),
        "database.sqlite_synchronous",
        &[
            "unknown variant `extra`, expected `normal` or `full`",
            "(from JOBS__DATABASE__SQLITE_SYNCHRONOUS)",
        ],
    );
    assert_error(
        load(Some("[database]\nsqlite_synchronous = \"off\"\n"), &[]),
        "database.sqlite_synchronous",
        &["unknown variant `off`", "jobs.toml"],
    );
    assert_error(
        load(None, &[("JOBS__DATABASE__MAX_CONNECTIONS", "0")]),
        "database.max_connections",
        &["must be at least 1"],
    );
    assert_error(
        load(Some("[database]\nsqlite_readers = 0\n"), &[]),
        "database.sqlite_readers",
        &["must be at least 1"],
    );
    assert_error(
        load(
            Some(
                "database_url = \"postgres://db/app\"\n[database]\npostgres_schema = \"Billing\"\n",
            ),
            &[],
        ),
        "database.postgres_schema",
        &["`Billing` is not a schema name", "lowercase"],
    );
    assert_error(
        load(None, &[("JOBS__DATABASE__POSTGRES_SCHEMA", "billing")]),
        "database.postgres_schema",
        &["is for PostgreSQL", "database file of its own"],
    );
    let schema = load(
        Some("database_url = \"postgres://db/app\"\n[database]\npostgres_schema = \"billing\"\n"),
        &[],
    )
    .unwrap();
    assert_eq!(
        schema.connect_options().postgres_schema.as_deref(),
        Some("billing")
    );
    assert_error(
        load(None, &[("JOBS__DATABASE__ACQUIRE_TIMEOUT", "a while")]),
        "database.acquire_timeout",
        &["invalid duration `a while`"],
    );
}

/// The settings as a section of an app's own, read with the `config` crate (as
/// `examples/app_config.rs` does): TOML with `APP__…` variables over it.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AppSettings {
    port: u16,
    #[serde(default)]
    jobs: JobsSettings,
}

fn app_settings(toml: &str, vars: &[(&str, &str)]) -> Result<AppSettings, config::ConfigError> {
    let env = vars
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    config::Config::builder()
        .add_source(config::File::from_str(toml, config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix("APP")
                .prefix_separator("__")
                .separator("__")
                .source(Some(env)),
        )
        .build()?
        .try_deserialize()
}

#[test]
fn the_config_crate_reads_the_settings_as_a_section() {
    let app = app_settings(
        r#"
        port = 3000

        [jobs]
        database_url = "sqlite://app.db"

        [jobs.dashboard]
        port = 8080

        [jobs.database]
        sqlite_synchronous = "full"
        "#,
        &[
            ("APP__PORT", "3001"),
            ("APP__JOBS__BACKGROUND_JOB_SERVER__POLL_INTERVAL", "1s"),
            ("APP__JOBS__BACKGROUND_JOB_SERVER__WORKER_COUNT", "12"),
            ("APP__JOBS__DASHBOARD__ENABLED", "false"),
        ],
    )
    .unwrap();
    assert_eq!(app.port, 3001);
    let jobs = app.jobs;
    jobs.validate().unwrap();
    assert_eq!(jobs.database_url, "sqlite://app.db");
    assert_eq!(jobs.dashboard.port, 8080);
    assert!(!jobs.dashboard.enabled);
    assert_eq!(jobs.database.sqlite_synchronous, SqliteSynchronous::Full);
    assert_eq!(
        jobs.database.sqlite_readers, 4,
        "missing keys keep their default"
    );
    assert_eq!(
        jobs.background_job_server.poll_interval,
        Duration::from_secs(1)
    );
    assert_eq!(jobs.background_job_server.worker_count, Some(12));
    assert_eq!(jobs.jobs.default_retries, 10);

    // No `[jobs]` at all: every default.
    let app = app_settings("port = 3000\n", &[]).unwrap();
    assert_eq!(app.jobs, JobsSettings::default());

    // A bad value is named by its key, whichever source it came from.
    for (toml, vars, key) in [
        (
            "port = 3000\n[jobs.dashboard]\nport = \"eighty\"\n",
            &[][..],
            "jobs.dashboard.port",
        ),
        (
            "port = 3000\n",
            &[(
                "APP__JOBS__BACKGROUND_JOB_SERVER__POLL_INTERVAL",
                "5 parsecs",
            )][..],
            "jobs.background_job_server.poll_interval",
        ),
        (
            "port = 3000\n",
            &[("APP__JOBS__DATABASE__SQLITE_SYNCHRONOUS", "extra")][..],
            "jobs.database.sqlite_synchronous",
        ),
    ] {
        let error = app_settings(toml, vars).unwrap_err().to_string();
        assert!(error.contains(key), "{error:?} names {key}");
    }
}

#[test]
fn username_and_password_come_together() {
    assert_error(
        load(Some("[dashboard]\nusername = \"admin\"\n"), &[]),
        "dashboard.password",
        &["is required when dashboard.username is set", "jobs.toml"],
    );
    assert_error(
        load(None, &[("JOBS__DASHBOARD__PASSWORD", "s3cret")]),
        "dashboard.username",
        &["is required when dashboard.password is set"],
    );
}

#[test]
fn a_broken_file_is_named_with_the_line() {
    let error = load(Some("[dashboard\nport = 1\n"), &[]).unwrap_err();
    assert_eq!(error.key(), None);
    let text = error.to_string();
    assert!(text.contains("jobs.toml"), "{text}");
    assert!(text.contains("line 1"), "{text}");
}

#[test]
fn a_malformed_variable_name_is_named() {
    let error = load(None, &[("JOBS__DASHBOARD____PORT", "1")]).unwrap_err();
    let text = error.to_string();
    assert!(text.starts_with("JOBS__DASHBOARD____PORT: "), "{text}");
}

#[test]
fn a_missing_file_means_defaults() {
    let settings = JobsSettings::load_from(
        Some(Path::new("/nonexistent/jobs.toml")),
        Vec::<(String, String)>::new(),
    )
    .unwrap();
    assert_eq!(settings, JobsSettings::default());
}
