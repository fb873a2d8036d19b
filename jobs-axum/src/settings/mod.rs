//! What the plugin is configured with: a serde struct that an application embeds in its
//! own configuration, or loads on its own from a TOML file and `JOBS__…` environment
//! variables. The keys are JobRunr's, which its users know.

mod dashboard;
mod duration;
mod error;
mod load;
mod rates;
mod tools;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use std::path::Path;
use std::time::Duration;

use jobs_core::{ConnectOptions, ServerConfig, SqliteSynchronous};
use serde::{Deserialize, Serialize};

pub use dashboard::DashboardSettings;
pub(crate) use dashboard::Mount;
pub use error::SettingsError;
pub use tools::ToolSettings;

/// Everything the plugin reads, with a default for every key.
///
/// In TOML, with the defaults:
///
/// ```toml
/// database_url = "sqlite://jobs.db"
///
/// [database]
/// max_connections = 10           # PostgreSQL pool
/// acquire_timeout = "30s"
/// sqlite_synchronous = "normal"  # or "full": a commit survives a power loss too
/// sqlite_readers = 4
/// postgres_durable_commits = false  # true: claims and results wait for the disk
/// # postgres_schema = "billing"  # PostgreSQL: this app's tables in a schema of their own
///
/// [background_job_server]
/// enabled = true
/// # worker_count = 64            # default: 8 per CPU core
/// # prefetch = 256               # default: 8 × worker_count; 0 turns it off
/// poll_interval = "5s"
/// # server_timeout = "20s"       # default: 4 × poll_interval
/// delete_succeeded_after = "36h"
/// delete_deleted_after = "72h"
/// shutdown_grace = "10s"
/// storage_timeout = "10s"
/// capture_backtraces = true     # a job's panic records a backtrace, even without RUST_BACKTRACE
/// # application = "crm"          # owner of its #[recurring] jobs; default: the executable's name
/// # release = "2.4.0"            # default: the version of the crates declaring #[recurring]
/// # only_jobs = ["mail.send"]    # default: every job this binary registers
/// # only_recurring = ["nightly"] # default: every #[recurring] this binary declares
/// fail_unserved_after = "1d"     # a due job no server registers fails after this
/// # queues = ["llm", "default"]  # default: claims from every queue
///
/// [background_job_server.queue_limits]         # at once in this process, per queue
/// # pdf = 2
///
/// [background_job_server.global_queue_limits]  # at once across every server
/// # pdf = 5
///
/// [jobs]
/// default_retries = 10
/// backoff_seed = 0
///
/// [dashboard]
/// enabled = true
/// port = 8000
/// bind = "127.0.0.1"
/// # username = "admin"           # with password: HTTP Basic auth on every route
/// # password = "…"
/// # allowed_hosts = ["jobs.example.com"]  # names besides localhost, 127.0.0.1, [::1], bind
/// # read_only_username = "viewer"          # with read_only_password: sees, changes nothing
/// # read_only_password = "…"
/// protected_upstream = false     # true: something in front authenticates every request
/// max_event_streams = 64         # live-update streams at once; past it, 503
/// pool_size = 2                  # database connections of the dashboard's own
///
/// [tools]
/// max_pending_jobs_per_caller = 100    # per caller of the agent tools
/// max_recurring_jobs_per_caller = 20
/// ```
///
/// Embed it in an application's own settings under any key (`#[serde(default)]` keeps
/// every key optional), or load it on its own with [`JobsSettings::load`]. Durations
/// are written as in `#[job(timeout = …)]`: numbers with the units `ms`, `s`, `m`, `h`
/// or `d`, such as `"500ms"`, `"15s"`, `"36h"` or `"1h 30m"`; unlike a timeout, a
/// duration setting may be `"0s"`. An unknown key is an error, and every error names
/// the key it is about.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct JobsSettings {
    /// Where jobs are stored: `sqlite://path/to/file.db` (created when missing) or,
    /// with the `postgres` feature of `jobs`, `postgres://user:password@host/db`.
    /// Default: `sqlite://jobs.db`, a file in the working directory.
    pub database_url: String,
    /// How the client connects to `database_url`.
    pub database: DatabaseSettings,
    /// The worker server that runs jobs in this process.
    pub background_job_server: BackgroundJobServerSettings,
    /// Defaults for every job.
    pub jobs: JobDefaults,
    /// The dashboard and its HTTP API.
    pub dashboard: DashboardSettings,
    /// The agent tools' per-caller quotas.
    pub tools: ToolSettings,
}

/// `database.*`: how the client connects to `database_url` (see
/// [`ConnectOptions`], which these become).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DatabaseSettings {
    /// PostgreSQL: the most pooled connections of this process (default 10).
    pub max_connections: u32,
    /// How long a statement waits for a free pooled connection before it fails
    /// (default `"30s"`).
    #[serde(with = "duration")]
    pub acquire_timeout: Duration,
    /// SQLite: `"normal"` (default; WAL synced at checkpoints: an application crash
    /// loses nothing committed, a power loss may lose the last transactions) or
    /// `"full"` (every commit waits for the disk).
    pub sqlite_synchronous: SqliteSynchronous,
    /// SQLite: read-only connections for the dashboard and other reads (default 4).
    pub sqlite_readers: u32,
    /// PostgreSQL: claims and results wait for their commit to reach the disk (default
    /// `false`: they commit asynchronously, so a crash of the database server may make
    /// a job that had just finished run again). See
    /// `ConnectOptions::postgres_durable_commits`.
    pub postgres_durable_commits: bool,
    /// PostgreSQL: the schema this library's tables live in, created when missing
    /// (default: none, so the role's `search_path`, usually `public`). Two applications
    /// with a schema each share a database without seeing each other's jobs. See
    /// `ConnectOptions::postgres_schema`.
    pub postgres_schema: Option<String>,
}

/// `background_job_server.*`: the worker server that runs jobs in this process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BackgroundJobServerSettings {
    /// Whether this process runs jobs (default `true`). Turn it off in a process that
    /// only enqueues, when other processes on the same database run the jobs.
    pub enabled: bool,
    /// Jobs run at once (default: 8 per CPU core). Waiting jobs are tokio tasks, so a
    /// few hundred jobs that wait on a model cost little.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_count: Option<usize>,
    /// Most jobs claimed ahead of free workers while jobs are short, under 62 ms
    /// (default: 8 × `worker_count`; 0 turns it off). Jobs claimed ahead that find no
    /// free worker within a second go back for any server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefetch: Option<usize>,
    /// How often the server looks for work it was not woken for, and heartbeats
    /// (default `"5s"`). Jobs enqueued by this process start at once regardless.
    #[serde(with = "duration")]
    pub poll_interval: Duration,
    /// How long a server may go without a heartbeat before its jobs are taken for
    /// orphaned and run again elsewhere (default: 4 × `poll_interval`).
    #[serde(with = "duration::option", skip_serializing_if = "Option::is_none")]
    pub server_timeout: Option<Duration>,
    /// How long succeeded jobs are kept for the dashboard (default `"36h"`).
    #[serde(with = "duration")]
    pub delete_succeeded_after: Duration,
    /// How long deleted jobs are kept before they are removed for good (default `"72h"`).
    #[serde(with = "duration")]
    pub delete_deleted_after: Duration,
    /// At shutdown, how long running jobs may take to finish (default `"10s"`); the
    /// rest are stopped and put back so the next server runs them at once.
    #[serde(with = "duration")]
    pub shutdown_grace: Duration,
    /// The longest a database call of the server may take before it is abandoned as
    /// failed and tried again (default `"10s"`), so an unreachable database never hangs
    /// claiming or recording results.
    #[serde(with = "duration")]
    pub storage_timeout: Duration,
    /// Whether a panic inside a job records a backtrace with the attempt, shown folded on
    /// the job's page (default `true`; captured even when `RUST_BACKTRACE` is unset).
    pub capture_backtraces: bool,
    /// The application this server belongs to (default: the executable's name): a
    /// server disables only its own application's `#[recurring]` jobs that it no longer
    /// declares, so services sharing a database never switch each other's off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    /// The release of the application (default: the newest version of the crates that
    /// declare its `#[recurring]` jobs): a server of an older release never changes the
    /// schedules a newer one registered. See `ServerConfig::release`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Runs only jobs of these names (default: every job this binary registers); a name
    /// it does not register is refused at boot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub only_jobs: Option<std::collections::BTreeSet<String>>,
    /// Declares only the `#[recurring]` jobs of these ids (default: every one this
    /// binary declares), for one binary deployed as several applications; an id it
    /// does not declare is refused at boot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub only_recurring: Option<std::collections::BTreeSet<String>>,
    /// A job due this long while no live server registers its name fails, saying so
    /// (default `"1d"`).
    #[serde(with = "duration")]
    pub fail_unserved_after: Duration,
    /// Claims jobs only of these queues (default: every queue); jobs of other queues
    /// wait for a server that serves them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queues: Option<BTreeSet<String>>,
    /// The most jobs of a queue this process runs at once, per queue.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub queue_limits: BTreeMap<String, usize>,
    /// The most jobs of a queue running at once across every server on the database,
    /// per queue, counted by the claim. Give every server the same limits.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub global_queue_limits: BTreeMap<String, usize>,
    /// At most so many jobs of a queue start in any window of the period, across every
    /// server on the database, per queue: `llm = "50/1m"`. Give every server the same
    /// rates.
    #[serde(with = "rates", skip_serializing_if = "BTreeMap::is_empty")]
    pub queue_rates: BTreeMap<String, jobs_core::Rate>,
}

/// `jobs.*`: defaults for every job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct JobDefaults {
    /// Retries of a job that does not set `#[job(retries = …)]` (default 10, so 11
    /// attempts, `3^n` seconds apart).
    pub default_retries: u32,
    /// Seed of the jitter added to retry delays (default 0).
    pub backoff_seed: u64,
}

impl Default for JobsSettings {
    fn default() -> Self {
        Self {
            database_url: "sqlite://jobs.db".to_owned(),
            database: DatabaseSettings::default(),
            background_job_server: BackgroundJobServerSettings::default(),
            jobs: JobDefaults::default(),
            dashboard: DashboardSettings::default(),
            tools: ToolSettings::default(),
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        let options = ConnectOptions::default();
        Self {
            max_connections: options.max_connections,
            acquire_timeout: options.acquire_timeout,
            sqlite_synchronous: options.sqlite_synchronous,
            sqlite_readers: options.sqlite_readers,
            postgres_durable_commits: options.postgres_durable_commits,
            postgres_schema: options.postgres_schema,
        }
    }
}

impl Default for BackgroundJobServerSettings {
    fn default() -> Self {
        let server = ServerConfig::default();
        Self {
            enabled: true,
            worker_count: None,
            prefetch: None,
            poll_interval: server.poll_interval,
            server_timeout: None,
            delete_succeeded_after: server.delete_succeeded_after,
            delete_deleted_after: server.delete_deleted_after,
            shutdown_grace: server.shutdown_grace,
            storage_timeout: server.storage_timeout,
            capture_backtraces: server.capture_backtraces,
            application: None,
            release: None,
            only_jobs: None,
            only_recurring: None,
            fail_unserved_after: server.fail_unserved_after,
            queues: None,
            queue_limits: BTreeMap::new(),
            global_queue_limits: BTreeMap::new(),
            queue_rates: BTreeMap::new(),
        }
    }
}

impl Default for JobDefaults {
    fn default() -> Self {
        let server = ServerConfig::default();
        Self {
            default_retries: server.default_retries,
            backoff_seed: server.backoff_seed,
        }
    }
}

impl JobsSettings {
    /// Reads the TOML file at `path` when it exists (defaults otherwise), then applies
    /// `JOBS__…` environment variables over it, and checks the result.
    ///
    /// A double underscore separates the levels of a key:
    /// `JOBS__BACKGROUND_JOB_SERVER__WORKER_COUNT=50` sets
    /// `background_job_server.worker_count`, `JOBS__DATABASE_URL` sets `database_url`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, SettingsError> {
        load::load(Some(path.as_ref()), std::env::vars_os())
    }

    /// The defaults with `JOBS__…` environment variables applied over them.
    pub fn from_env() -> Result<Self, SettingsError> {
        load::load(None, std::env::vars_os())
    }

    /// Like [`load`](Self::load), with the environment given instead of read from the
    /// process (so tests need not change the process's environment). Variables that do
    /// not start with `JOBS__` are ignored.
    pub fn load_from<K, V>(
        path: Option<&Path>,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, SettingsError>
    where
        K: Into<std::ffi::OsString>,
        V: Into<std::ffi::OsString>,
    {
        load::load(path, vars)
    }

    /// Settings from a TOML document (no environment), checked.
    pub fn from_toml(text: &str) -> Result<Self, SettingsError> {
        load::from_toml(text)
    }

    /// Checks what serde cannot: values in range and keys that go together. The
    /// plugin calls this at boot, so settings embedded in an app's own configuration
    /// are checked too.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key: &str, message: &str| Err(SettingsError::invalid(key, message));
        if self.database_url.trim().is_empty() {
            return invalid("database_url", "must not be empty");
        }
        let database = &self.database;
        if database.max_connections == 0 {
            return invalid("database.max_connections", "must be at least 1");
        }
        if database.acquire_timeout.is_zero() {
            return invalid("database.acquire_timeout", "must be above zero");
        }
        if database.sqlite_readers == 0 {
            return invalid("database.sqlite_readers", "must be at least 1");
        }
        if let Some(schema) = &database.postgres_schema {
            if let Err(error) = jobs_grammar::check_schema_name(schema) {
                return invalid("database.postgres_schema", &error.to_string());
            }
            if self.database_url.starts_with("sqlite:") {
                return invalid(
                    "database.postgres_schema",
                    "is for PostgreSQL: on SQLite, give each application a database file of its own",
                );
            }
        }
        let server = &self.background_job_server;
        if server.worker_count == Some(0) {
            return invalid("background_job_server.worker_count", "must be at least 1");
        }
        if server.poll_interval.is_zero() {
            return invalid("background_job_server.poll_interval", "must be above zero");
        }
        if server.server_timeout() <= server.poll_interval {
            return invalid(
                "background_job_server.server_timeout",
                "must be longer than background_job_server.poll_interval, or live servers \
                 would be taken for dead",
            );
        }
        for (key, limits) in [
            ("queue_limits", &server.queue_limits),
            ("global_queue_limits", &server.global_queue_limits),
        ] {
            for (queue, &limit) in limits {
                let key = format!("background_job_server.{key}.{queue}");
                if let Err(error) = jobs_core::grammar::check_queue_name(queue) {
                    return invalid(&key, &error.to_string());
                }
                if limit == 0 {
                    return invalid(&key, "must be at least 1 (pause a queue to stop it)");
                }
            }
        }
        // The ranges of every duration, as the server checks them at start.
        if let Err(setting) = self.server_config().check() {
            return invalid(
                &format!("background_job_server.{}", setting.key),
                &setting.message,
            );
        }
        for host in &self.dashboard.allowed_hosts {
            if let Err(message) = crate::AllowedHosts::check(host) {
                return invalid("dashboard.allowed_hosts", &message);
            }
        }
        let dashboard = &self.dashboard;
        for (user, password, user_key, password_key) in [
            (
                &dashboard.username,
                &dashboard.password,
                "dashboard.username",
                "dashboard.password",
            ),
            (
                &dashboard.read_only_username,
                &dashboard.read_only_password,
                "dashboard.read_only_username",
                "dashboard.read_only_password",
            ),
        ] {
            match (user, password) {
                (Some(_), None) => {
                    return invalid(password_key, &format!("is required when {user_key} is set"));
                }
                (None, Some(_)) => {
                    return invalid(user_key, &format!("is required when {password_key} is set"));
                }
                _ => {}
            }
        }
        if dashboard.max_event_streams == 0 {
            return invalid("dashboard.max_event_streams", "must be at least 1");
        }
        if dashboard.pool_size == 0 {
            return invalid("dashboard.pool_size", "must be at least 1");
        }
        if dashboard.enabled {
            dashboard.check_exposure(Mount::Standalone)?;
        }
        self.tools.validate()
    }

    /// How the client connects, as these settings describe it
    /// (`Jobs::builder().url(…).connect_options(…)`).
    pub fn connect_options(&self) -> ConnectOptions {
        let database = &self.database;
        let options = ConnectOptions::default()
            .max_connections(database.max_connections)
            .acquire_timeout(database.acquire_timeout)
            .sqlite_synchronous(database.sqlite_synchronous)
            .sqlite_readers(database.sqlite_readers)
            .postgres_durable_commits(database.postgres_durable_commits);
        match &database.postgres_schema {
            Some(schema) => options.postgres_schema(schema.clone()),
            None => options,
        }
    }

    /// The worker server's configuration these settings describe.
    pub fn server_config(&self) -> ServerConfig {
        let server = &self.background_job_server;
        let mut config = ServerConfig::default();
        if let Some(count) = server.worker_count {
            config.worker_count = count;
        }
        config.prefetch = server.prefetch;
        config.poll_interval = server.poll_interval;
        config.server_timeout = server.server_timeout();
        config.delete_succeeded_after = server.delete_succeeded_after;
        config.delete_deleted_after = server.delete_deleted_after;
        config.shutdown_grace = server.shutdown_grace;
        config.storage_timeout = server.storage_timeout;
        config.capture_backtraces = server.capture_backtraces;
        config.application = server.application.clone();
        config.release = server.release.clone();
        config.only_jobs = server.only_jobs.clone();
        config.only_recurring = server.only_recurring.clone();
        config.fail_unserved_after = server.fail_unserved_after;
        config.queues = server.queues.clone();
        config.queue_limits = server.queue_limits.clone();
        config.global_queue_limits = server.global_queue_limits.clone();
        config.queue_rates = server.queue_rates.clone();
        config.default_retries = self.jobs.default_retries;
        config.backoff_seed = self.jobs.backoff_seed;
        config
    }
}

impl BackgroundJobServerSettings {
    /// The server timeout in force: the one set, or 4 × `poll_interval`.
    pub fn server_timeout(&self) -> Duration {
        self.server_timeout
            .unwrap_or(self.poll_interval.saturating_mul(4))
    }
}

/// Hides the password of the database URL.
impl fmt::Debug for JobsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobsSettings")
            .field("database_url", &without_password(&self.database_url))
            .field("database", &self.database)
            .field("background_job_server", &self.background_job_server)
            .field("jobs", &self.jobs)
            .field("dashboard", &self.dashboard)
            .field("tools", &self.tools)
            .finish()
    }
}

/// `scheme://user:secret@host/db` → `scheme://user:***@host/db`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests;
