//! The ranges of the server's settings, checked at start with the setting named.

use std::fmt;
use std::time::Duration;

use super::ServerConfig;

/// A setting of [`ServerConfig`] out of its range: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InvalidSetting {
    /// The setting, as named in [`ServerConfig`] and in the plugin's settings
    /// (`background_job_server.<key>`).
    pub key: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for InvalidSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.key, self.message)
    }
}

impl std::error::Error for InvalidSetting {}

const SECOND: Duration = Duration::from_secs(1);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// The most jobs a server runs at once.
const MAX_WORKERS: usize = 100_000;

/// The longest of each duration setting: far beyond any use, and far inside what the
/// dates of the database and the arithmetic of the maintenance can hold.
const MAX_POLL_INTERVAL: Duration = DAY;
const MAX_SERVER_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);
const MAX_STORAGE_TIMEOUT: Duration = Duration::from_secs(3600);
const MAX_SHUTDOWN_GRACE: Duration = DAY;
const MAX_RETENTION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
/// The longest period of a rate: the claims keep a scope's starts that long.
const MAX_RATE_PERIOD: Duration = DAY;

/// Shortest server timeout: a quarter of it bounds each heartbeat.
const MIN_SERVER_TIMEOUT: Duration = Duration::from_millis(100);
/// Shortest storage timeout.
const MIN_STORAGE_TIMEOUT: Duration = Duration::from_millis(10);

impl ServerConfig {
    /// The application in force: the one set, or the executable's name (`app` when it
    /// cannot be read).
    pub fn application(&self) -> String {
        self.application.clone().unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|exe| Some(exe.file_stem()?.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "app".to_owned())
        })
    }

    /// The release in force: the one set, or the newest version of the crates that
    /// declare this binary's `#[recurring]` jobs (empty when there are none).
    pub fn release(&self) -> String {
        self.release.clone().unwrap_or_else(|| {
            self.declared_recurring()
                .iter()
                .map(|descriptor| descriptor.release_setting())
                .max_by(|a, b| crate::storage::release_order(a, b))
                .unwrap_or_default()
                .to_owned()
        })
    }

    /// The `#[recurring]` jobs this server declares as its application's: every one
    /// this binary has, or those `only_recurring` names.
    pub fn declared_recurring(&self) -> Vec<&'static crate::recurring::RecurringDescriptor> {
        let mut declared = crate::recurring::declared_recurring();
        if let Some(only) = &self.only_recurring {
            declared.retain(|descriptor| only.contains(descriptor.id()));
        }
        declared
    }

    /// The prefetch limit in force: the one set, or 8 × `worker_count`.
    pub fn prefetch_limit(&self) -> usize {
        self.prefetch
            .unwrap_or_else(|| self.worker_count.saturating_mul(8))
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let poll_interval = Duration::from_secs(5);
        Self {
            worker_count: cores * 8,
            poll_interval,
            server_timeout: poll_interval * 4,
            storage_timeout: Duration::from_secs(10),
            default_retries: crate::DEFAULT_RETRIES,
            backoff_seed: 0,
            shutdown_grace: Duration::from_secs(10),
            delete_succeeded_after: Duration::from_secs(36 * 3600),
            delete_deleted_after: Duration::from_secs(72 * 3600),
            name: None,
            queue_limits: std::collections::BTreeMap::new(),
            global_queue_limits: std::collections::BTreeMap::new(),
            queue_rates: std::collections::BTreeMap::new(),
            queues: None,
            prefetch: None,
            capture_backtraces: true,
            only_jobs: None,
            only_recurring: None,
            fail_unserved_after: Duration::from_secs(24 * 3600),
            application: None,
            release: None,
        }
    }
}

impl ServerConfig {
    /// Checks every setting's range, and the settings that go together (a server
    /// timeout longer than the poll interval); the error names the setting. The server
    /// checks this at start.
    pub fn check(&self) -> Result<(), InvalidSetting> {
        let invalid = |key, message: String| Err(InvalidSetting { key, message });
        if self.worker_count == 0 || self.worker_count > MAX_WORKERS {
            return invalid(
                "worker_count",
                format!("must be from 1 to {MAX_WORKERS}, not {}", self.worker_count),
            );
        }
        if let Some(prefetch) = self.prefetch
            && prefetch > MAX_WORKERS * 8
        {
            return invalid(
                "prefetch",
                format!("must be at most {}, not {prefetch}", MAX_WORKERS * 8),
            );
        }
        in_range(
            "poll_interval",
            self.poll_interval,
            Duration::from_millis(1),
            MAX_POLL_INTERVAL,
        )?;
        in_range(
            "server_timeout",
            self.server_timeout,
            MIN_SERVER_TIMEOUT,
            MAX_SERVER_TIMEOUT,
        )?;
        in_range(
            "storage_timeout",
            self.storage_timeout,
            MIN_STORAGE_TIMEOUT,
            MAX_STORAGE_TIMEOUT,
        )?;
        in_range(
            "shutdown_grace",
            self.shutdown_grace,
            Duration::ZERO,
            MAX_SHUTDOWN_GRACE,
        )?;
        in_range(
            "delete_succeeded_after",
            self.delete_succeeded_after,
            Duration::ZERO,
            MAX_RETENTION,
        )?;
        in_range(
            "delete_deleted_after",
            self.delete_deleted_after,
            Duration::ZERO,
            MAX_RETENTION,
        )?;
        in_range(
            "fail_unserved_after",
            self.fail_unserved_after,
            SECOND,
            MAX_RETENTION,
        )?;
        if let Some(only) = &self.only_jobs {
            let registered = crate::job::registry();
            if let Some(unknown) = only
                .iter()
                .find(|name| !registered.contains_key(name.as_str()))
            {
                return invalid(
                    "only_jobs",
                    format!(
                        "names `{unknown}`, which this binary does not register (registered: {})",
                        crate::registered_jobs().join(", ")
                    ),
                );
            }
        }
        if let Some(only) = &self.only_recurring {
            let declared = crate::recurring::declared_recurring();
            if let Some(unknown) = only.iter().find(|id| {
                !declared
                    .iter()
                    .any(|descriptor| descriptor.id() == id.as_str())
            }) {
                let ids: Vec<&str> = declared.iter().map(|descriptor| descriptor.id()).collect();
                return invalid(
                    "only_recurring",
                    format!(
                        "names `{unknown}`, which this binary does not declare (declared: {})",
                        ids.join(", ")
                    ),
                );
            }
        }
        for (key, limits) in [
            ("queue_limits", &self.queue_limits),
            ("global_queue_limits", &self.global_queue_limits),
        ] {
            for (queue, &limit) in limits {
                if let Err(error) = jobs_grammar::check_queue_name(queue) {
                    return invalid(key, format!("names a bad queue: {error}"));
                }
                if limit == 0 || limit > MAX_WORKERS {
                    return invalid(
                        key,
                        format!(
                            "of `{queue}` must be from 1 to {MAX_WORKERS}, not {limit} \
                             (pause a queue to stop it)"
                        ),
                    );
                }
            }
        }
        for (queue, rate) in &self.queue_rates {
            if let Err(error) = jobs_grammar::check_queue_name(queue) {
                return invalid("queue_rates", format!("names a bad queue: {error}"));
            }
            if rate.count == 0 || rate.period < Duration::from_millis(1) {
                return invalid(
                    "queue_rates",
                    format!(
                        "of `{queue}` must start at least 1 job per period of at least 1ms, \
                         not {} per {} (pause a queue to stop it)",
                        rate.count,
                        human(rate.period)
                    ),
                );
            }
            if rate.period > MAX_RATE_PERIOD {
                return invalid(
                    "queue_rates",
                    format!(
                        "of `{queue}` must have a period of at most {}, not {}",
                        human(MAX_RATE_PERIOD),
                        human(rate.period)
                    ),
                );
            }
        }
        if let Some(queues) = &self.queues {
            if queues.is_empty() {
                return invalid(
                    "queues",
                    "names no queue: the server would run nothing".into(),
                );
            }
            if let Some(error) = queues
                .iter()
                .find_map(|queue| jobs_grammar::check_queue_name(queue).err())
            {
                return invalid("queues", format!("names a bad queue: {error}"));
            }
        }
        if self.server_timeout <= self.poll_interval {
            return invalid(
                "server_timeout",
                format!(
                    "({}) must be longer than poll_interval ({}), or live servers would be \
                     taken for dead",
                    human(self.server_timeout),
                    human(self.poll_interval)
                ),
            );
        }
        Ok(())
    }
}

impl ServerConfig {
    /// The queues it claims from and their limits, as its row declares them.
    pub(super) fn declared_queues(&self) -> crate::ServerQueues {
        let limits = |limits: &std::collections::BTreeMap<String, usize>| {
            limits
                .iter()
                .map(|(queue, &limit)| (queue.clone(), u64::try_from(limit).unwrap_or(u64::MAX)))
                .collect()
        };
        crate::ServerQueues {
            served: self
                .queues
                .as_ref()
                .map(|queues| queues.iter().cloned().collect()),
            limits: limits(&self.queue_limits),
            global_limits: limits(&self.global_queue_limits),
            rates: self
                .queue_rates
                .iter()
                .map(|(queue, rate)| (queue.clone(), rate.to_string()))
                .collect(),
        }
    }

    /// The queues with a limit, in this process or across all, or a rate, sorted.
    pub(super) fn limited_queues(&self) -> Vec<String> {
        let queues: std::collections::BTreeSet<&String> = self
            .queue_limits
            .keys()
            .chain(self.global_queue_limits.keys())
            .chain(self.queue_rates.keys())
            .collect();
        queues.into_iter().cloned().collect()
    }
}

fn in_range(
    key: &'static str,
    value: Duration,
    min: Duration,
    max: Duration,
) -> Result<(), InvalidSetting> {
    if value < min || value > max {
        let range = if min.is_zero() {
            format!("at most {}", human(max))
        } else {
            format!("from {} to {}", human(min), human(max))
        };
        return Err(InvalidSetting {
            key,
            message: format!("must be {range}, not {}", human(value)),
        });
    }
    Ok(())
}

/// A duration as the settings write it: `100ms`, `20s`, `36500d`.
pub(super) fn human(duration: Duration) -> String {
    let millis = duration.as_millis();
    if duration < SECOND || !millis.is_multiple_of(1000) {
        return format!("{millis}ms");
    }
    let secs = duration.as_secs();
    match secs {
        _ if secs.is_multiple_of(86_400) => format!("{}d", secs / 86_400),
        _ if secs.is_multiple_of(3600) => format!("{}h", secs / 3600),
        _ if secs.is_multiple_of(60) => format!("{}m", secs / 60),
        _ => format!("{secs}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rate;

    fn key_of(config: &ServerConfig) -> Option<&'static str> {
        config.check().err().map(|invalid| invalid.key)
    }

    #[test]
    fn every_duration_is_range_checked_with_its_key_named() {
        let ok = ServerConfig::default();
        assert_eq!(ok.check(), Ok(()));
        let huge = Duration::from_secs(300_000 * 365 * 24 * 3600);
        type Set = fn(&mut ServerConfig, Duration);
        let cases: [(&str, Set); 6] = [
            ("delete_succeeded_after", |c, d| {
                c.delete_succeeded_after = d
            }),
            ("delete_deleted_after", |c, d| c.delete_deleted_after = d),
            ("shutdown_grace", |c, d| c.shutdown_grace = d),
            ("storage_timeout", |c, d| c.storage_timeout = d),
            ("server_timeout", |c, d| c.server_timeout = d),
            ("poll_interval", |c, d| c.poll_interval = d),
        ];
        for (key, set) in cases {
            let mut config = ServerConfig::default();
            set(&mut config, huge);
            let invalid = config.check().unwrap_err();
            assert_eq!(invalid.key, key);
            assert!(invalid.to_string().starts_with(key), "{invalid}");
        }
        let config = ServerConfig {
            delete_succeeded_after: huge,
            ..ServerConfig::default()
        };
        assert_eq!(
            config.check().unwrap_err().to_string(),
            "delete_succeeded_after must be at most 36500d, not 109500000d"
        );
    }

    #[test]
    fn settings_that_go_together_are_checked_with_the_key_named() {
        let mut config = ServerConfig::default();
        config.server_timeout = config.poll_interval;
        assert_eq!(key_of(&config), Some("server_timeout"));
        config = ServerConfig::default();
        config.worker_count = 0;
        assert_eq!(key_of(&config), Some("worker_count"));
        config = ServerConfig::default();
        config.poll_interval = Duration::ZERO;
        assert_eq!(key_of(&config), Some("poll_interval"));
        config = ServerConfig::default();
        config.storage_timeout = Duration::ZERO;
        assert_eq!(key_of(&config), Some("storage_timeout"));
        config = ServerConfig::default();
        config.only_jobs = Some(["billing.nowhere".to_owned()].into());
        assert_eq!(key_of(&config), Some("only_jobs"));
        config = ServerConfig::default();
        config.only_recurring = Some(["billing.nowhere".to_owned()].into());
        assert_eq!(key_of(&config), Some("only_recurring"));
        config = ServerConfig::default();
        config.fail_unserved_after = Duration::ZERO;
        assert_eq!(key_of(&config), Some("fail_unserved_after"));
        config = ServerConfig::default();
        config.global_queue_limits.insert("pdf".into(), 0);
        assert_eq!(key_of(&config), Some("global_queue_limits"));
        config = ServerConfig::default();
        config.queue_limits.insert("no spaces".into(), 2);
        assert_eq!(key_of(&config), Some("queue_limits"));
        config = ServerConfig::default();
        config.queues = Some(Default::default());
        assert_eq!(key_of(&config), Some("queues"));
        for rate in [
            Rate::per(0, SECOND),
            Rate::per(5, Duration::ZERO),
            Rate::per(5, DAY * 2),
        ] {
            config = ServerConfig::default();
            config.queue_rates.insert("llm".into(), rate);
            assert_eq!(key_of(&config), Some("queue_rates"), "{rate}");
        }
        config = ServerConfig::default();
        config
            .queue_rates
            .insert("no spaces".into(), Rate::per(5, SECOND));
        assert_eq!(key_of(&config), Some("queue_rates"));
    }
}
