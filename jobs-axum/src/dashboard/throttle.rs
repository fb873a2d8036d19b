//! Failed logins, counted per client address: after [`FAILURES`] in a [`WINDOW`], the
//! address gets 429 with `Retry-After` until the window ends, whatever it presents, so
//! guessing a password costs a window per ten guesses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use jobs_core::Clock;

/// Failures an address may make in one window.
pub(super) const FAILURES: u32 = 10;
/// How long a window lasts, from an address's first failure in it.
pub(super) const WINDOW: chrono::TimeDelta = chrono::TimeDelta::seconds(60);
/// Addresses remembered before expired windows are swept.
const SWEEP_ABOVE: usize = 4096;

/// The failures of each address, on the dashboard's clock.
#[derive(Debug)]
pub(super) struct Throttle {
    clock: Arc<dyn Clock>,
    windows: Mutex<HashMap<Option<IpAddr>, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: DateTime<Utc>,
    failures: u32,
}

impl Throttle {
    pub(super) fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds to wait)` while `address` has failed too often. An unknown
    /// address (a router served without `ConnectInfo`) is one address for all.
    pub(super) fn wait(&self, address: Option<IpAddr>) -> Option<u64> {
        let now = self.clock.now();
        let windows = self.windows.lock().expect("throttle lock");
        let window = windows.get(&address)?;
        let end = window.start + WINDOW;
        (window.failures >= FAILURES && now < end).then(|| {
            let left = end - now;
            // Whole seconds, rounded up: a client that waits that long is let in.
            u64::try_from((left.num_milliseconds() + 999) / 1000).unwrap_or(1)
        })
    }

    pub(super) fn failed(&self, address: Option<IpAddr>) {
        let now = self.clock.now();
        let mut windows = self.windows.lock().expect("throttle lock");
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, window| now < window.start + WINDOW);
        }
        let window = windows.entry(address).or_insert(Window {
            start: now,
            failures: 0,
        });
        if now >= window.start + WINDOW {
            *window = Window {
                start: now,
                failures: 0,
            };
        }
        window.failures += 1;
    }

    pub(super) fn succeeded(&self, address: Option<IpAddr>) {
        self.windows.lock().expect("throttle lock").remove(&address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobs_core::ManualClock;

    #[test]
    fn ten_failures_wait_out_the_window_and_addresses_are_apart() {
        let clock = ManualClock::new(DateTime::UNIX_EPOCH);
        let throttle = Throttle::new(Arc::new(clock.clone()));
        let guesser = Some(IpAddr::from([10, 0, 0, 1]));
        let other = Some(IpAddr::from([10, 0, 0, 2]));
        for _ in 0..FAILURES {
            assert_eq!(throttle.wait(guesser), None);
            throttle.failed(guesser);
        }
        assert_eq!(throttle.wait(guesser), Some(60));
        assert_eq!(throttle.wait(other), None);
        clock.advance(std::time::Duration::from_millis(59_500));
        assert_eq!(throttle.wait(guesser), Some(1));
        clock.advance(std::time::Duration::from_millis(500));
        assert_eq!(throttle.wait(guesser), None);
        throttle.failed(guesser);
        assert_eq!(throttle.wait(guesser), None, "a new window");
    }
}
