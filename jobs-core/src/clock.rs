//! The one source of "now" for the whole runtime, injectable so tests move time by hand.

use std::fmt;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use tokio::sync::watch;

/// A source of the current time.
///
/// Nothing in `jobs` calls `Utc::now()` directly: the client and the server ask their
/// clock, so a test can use [`ManualClock`] and move time without sleeping.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// Resolves the next time the clock is moved by hand.
    ///
    /// The server waits on this beside its poll timer, so a job whose time came
    /// because a test advanced the clock starts at once. The system clock never
    /// resolves it.
    fn moved(&self) -> BoxFuture<'static, ()> {
        Box::pin(std::future::pending())
    }

    /// What this clock adds to real time, for leases.
    ///
    /// Leases are on the database's clock (on PostgreSQL `clock_timestamp()`), so that
    /// servers whose clocks disagree still agree on when a lease runs out. A clock that
    /// is deliberately not real time (a test's [`ManualClock`]) says here by how much,
    /// and its leases run out when it says so. Zero by default: the leases follow the
    /// database.
    fn lease_offset(&self) -> chrono::Duration {
        chrono::Duration::zero()
    }
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The system clock off by a fixed amount, like a host whose clock is badly
/// synchronised: `now()` is the system time plus `offset` (which may be negative).
///
/// Leases do not follow it: [`Clock::lease_offset`] is zero, since leases are written
/// and compared on the database's clock. Tests use it to run servers whose clocks
/// disagree.
#[derive(Debug, Clone, Copy)]
pub struct SkewedClock {
    offset: chrono::Duration,
}

impl SkewedClock {
    /// The system clock plus `offset`.
    pub fn new(offset: chrono::Duration) -> Self {
        Self { offset }
    }

    /// How far it is from the system clock.
    pub fn offset(&self) -> chrono::Duration {
        self.offset
    }
}

impl Clock for SkewedClock {
    fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        now.checked_add_signed(self.offset).unwrap_or(now)
    }
}

/// A clock that only moves when told to, for tests of retries and schedules.
///
/// Cloning shares the time: advance one clone and every holder sees it.
///
/// ```no_run
/// # async fn demo() -> jobs_core::Result<()> {
/// use chrono::{TimeZone, Utc};
/// use jobs_core::{Jobs, ManualClock};
///
/// let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap());
/// let jobs = Jobs::builder()
///     .url("sqlite://test.db")
///     .clock(clock.clone())
///     .connect()
///     .await?;
/// // A job scheduled for 10:00 becomes due when the test says so, with no sleep.
/// clock.advance(std::time::Duration::from_secs(3600));
/// # drop(jobs); Ok(()) }
/// ```
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
    moved: Arc<watch::Sender<u64>>,
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .finish()
    }
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
            moved: Arc::new(watch::channel(0).0),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        let by = chrono::Duration::from_std(by).expect("duration fits in chrono");
        let mut now = self.now.lock().expect("clock lock");
        *now += by;
        drop(now);
        self.moved.send_modify(|n| *n += 1);
    }

    /// Sets the clock to `to` (which may be in the past).
    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().expect("clock lock") = to;
        self.moved.send_modify(|n| *n += 1);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("clock lock")
    }

    /// Its time minus real time, so that leases run out when this clock says.
    fn lease_offset(&self) -> chrono::Duration {
        self.now() - Utc::now()
    }

    fn moved(&self) -> BoxFuture<'static, ()> {
        let mut rx = self.moved.subscribe();
        Box::pin(async move {
            // An error means every sender is gone: the clock can never move again.
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skewed_clock_is_off_by_its_offset_and_leases_follow_the_database() {
        let ahead = SkewedClock::new(chrono::Duration::seconds(60));
        let before = Utc::now();
        let now = ahead.now();
        let after = Utc::now();
        assert!(now >= before + chrono::Duration::seconds(60));
        assert!(now <= after + chrono::Duration::seconds(60));
        assert_eq!(ahead.lease_offset(), chrono::Duration::zero());
        let behind = SkewedClock::new(chrono::Duration::seconds(-60));
        assert!(behind.now() < Utc::now());
    }
}
