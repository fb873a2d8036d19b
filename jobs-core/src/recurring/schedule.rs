//! When recurring jobs fire: cron expressions in a time zone, or fixed intervals, and
//! what happens to ticks missed while no server was running.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// A schedule that is not valid, with the reason. The rules are those `#[recurring]`
/// applies at compile time ([`grammar`](crate::grammar)), and so is the message: what
/// is wrong, then in parentheses how the string should look.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The cron expression does not parse.
    #[error(transparent)]
    Cron(#[from] jobs_grammar::CronError),
    /// The zone is not an IANA time zone name.
    #[error(transparent)]
    Zone(#[from] jobs_grammar::ZoneError),
    /// The interval does not parse, or is zero.
    #[error(transparent)]
    Interval(#[from] jobs_grammar::DurationError),
}

/// When a recurring job fires.
#[derive(Clone)]
pub struct Schedule {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Cron {
        expression: String,
        zone: Tz,
        cron: Box<Cron>,
    },
    Every(Duration),
}

/// Parses a cron expression the way `#[recurring]` checks it at compile time: the
/// 5-field Unix form (`0 8 * * *`) or the 6-field form with seconds first
/// (`30 0 8 * * *`), with month and day names (`0 2 * * MON-FRI`). A 7th (year) field
/// is refused.
pub fn parse_cron(expression: &str) -> Result<Cron, ScheduleError> {
    Ok(jobs_grammar::parse_cron(expression)?.into_parts().1)
}

/// Parses a time zone name (`UTC`, `Europe/Brussels`, …).
pub fn parse_zone(zone: &str) -> Result<Tz, ScheduleError> {
    Ok(jobs_grammar::parse_zone(zone)?)
}

/// Parses a human interval the way `#[recurring(every = …)]` checks it at compile time:
/// `<number><unit>` parts with units `ms`, `s`, `m`, `h`, `d`, optionally separated by
/// spaces (`15m`, `1h30m`, `1h 30m`, `500ms`). Zero is refused.
pub fn parse_interval(text: &str) -> Result<Duration, ScheduleError> {
    Ok(jobs_grammar::parse_duration(
        text,
        jobs_grammar::DurationUse::Interval,
    )?)
}

/// The prefix that marks an interval in the stored schedule text.
const EVERY: &str = "@every ";

impl Schedule {
    /// A cron schedule evaluated in UTC.
    pub fn cron(expression: &str) -> Result<Self, ScheduleError> {
        Self::cron_in(expression, "UTC")
    }

    /// A cron schedule evaluated in `zone`, daylight-saving changes included.
    pub fn cron_in(expression: &str, zone: &str) -> Result<Self, ScheduleError> {
        let (expression, cron) = jobs_grammar::parse_cron(expression)?.into_parts();
        Ok(Self {
            kind: Kind::Cron {
                expression,
                zone: parse_zone(zone)?,
                cron: Box::new(cron),
            },
        })
    }

    /// Every `interval`, counted from when the schedule was created.
    pub fn every(interval: Duration) -> Result<Self, ScheduleError> {
        jobs_grammar::check_duration(interval, jobs_grammar::DurationUse::Interval)?;
        Ok(Self {
            kind: Kind::Every(interval),
        })
    }

    /// The schedule as stored: the cron expression, or `@every <seconds>s`.
    pub fn expression(&self) -> String {
        match &self.kind {
            Kind::Cron { expression, .. } => expression.clone(),
            Kind::Every(interval) => format!("{EVERY}{}ms", interval.as_millis()),
        }
    }

    /// The zone the schedule is read in (`UTC` for intervals).
    pub fn zone(&self) -> &str {
        match &self.kind {
            Kind::Cron { zone, .. } => zone.name(),
            Kind::Every(_) => "UTC",
        }
    }

    /// Reads a schedule back from its stored form.
    pub(crate) fn from_stored(expression: &str, zone: &str) -> Result<Self, ScheduleError> {
        match expression.strip_prefix(EVERY) {
            Some(interval) => Self::every(parse_interval(interval)?),
            None => Self::cron_in(expression, zone),
        }
    }

    /// The first tick strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Cron { zone, cron, .. } => cron
                .find_next_occurrence(&after.with_timezone(zone), false)
                .ok()
                .map(|next| next.with_timezone(&Utc)),
            Kind::Every(interval) => after.checked_add_signed(to_chrono(*interval)),
        }
    }

    /// The ticks in `[from, to]`, newest first, at most `limit` of them.
    ///
    /// `from` must be a tick (a stored `next_run_at`); intervals count from it.
    pub(crate) fn ticks_back(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut ticks = Vec::new();
        if to < from || limit == 0 {
            return ticks;
        }
        match &self.kind {
            Kind::Cron { zone, cron, .. } => {
                let mut cursor = to.with_timezone(zone);
                let mut inclusive = true;
                while ticks.len() < limit {
                    let Ok(tick) = cron.find_previous_occurrence(&cursor, inclusive) else {
                        break;
                    };
                    let tick_utc = tick.with_timezone(&Utc);
                    if tick_utc < from {
                        break;
                    }
                    ticks.push(tick_utc);
                    cursor = tick;
                    inclusive = false;
                }
            }
            Kind::Every(interval) => {
                // Counted in nanoseconds, without a cap: an interval of a millisecond
                // and a half, or of a millisecond missed for years, lands on its grid.
                let step = interval.as_nanos();
                let span = (to - from).to_std().map_or(0, |span| span.as_nanos());
                for steps in (0..=span / step).rev().take(limit) {
                    let Some(tick) =
                        from_nanos(steps * step).and_then(|offset| from.checked_add_signed(offset))
                    else {
                        break;
                    };
                    ticks.push(tick);
                }
            }
        }
        ticks
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schedule")
            .field("expression", &self.expression())
            .field("zone", &self.zone())
            .finish()
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression() == other.expression() && self.zone() == other.zone()
    }
}

/// What happens to ticks that passed while no server was running (an outage, a deploy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissedTicks {
    /// Missed ticks are dropped; the job next runs at its next tick. A tick counts as
    /// missed when it is over a minute late.
    Skip,
    /// One run for all the ticks missed, then back on schedule.
    #[default]
    RunOnce,
    /// One run per missed tick, the newest `max` of them, oldest first.
    CatchUp {
        /// At most this many catch-up runs.
        max: u32,
    },
}

/// How late a tick may fire and still not count as missed under [`MissedTicks::Skip`].
pub(crate) const MISFIRE_GRACE: chrono::Duration = chrono::Duration::seconds(60);

impl MissedTicks {
    /// The stored form: `skip`, `run_once`, `catch_up:<max>`.
    pub fn as_stored(&self) -> String {
        match self {
            MissedTicks::Skip => "skip".into(),
            MissedTicks::RunOnce => "run_once".into(),
            MissedTicks::CatchUp { max } => format!("catch_up:{max}"),
        }
    }

    /// Reads the stored form back; anything unknown is the default.
    pub fn from_stored(text: &str) -> Self {
        match text {
            "skip" => MissedTicks::Skip,
            _ => match text.strip_prefix("catch_up:").map(str::parse) {
                Some(Ok(max)) => MissedTicks::CatchUp { max },
                _ => MissedTicks::RunOnce,
            },
        }
    }
}

/// The runs to create for a recurring job that is due, and its next tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The ticks to run, oldest first.
    pub(crate) runs: Vec<DateTime<Utc>>,
    pub(crate) next: Option<DateTime<Utc>>,
}

/// Plans the runs of a job whose stored next tick `due` is at or before `now`.
pub(crate) fn plan(
    schedule: &Schedule,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
    missed: MissedTicks,
) -> Plan {
    let keep = match missed {
        MissedTicks::Skip | MissedTicks::RunOnce => 1,
        MissedTicks::CatchUp { max } => max.max(1) as usize,
    };
    let mut runs = schedule.ticks_back(due, now, keep);
    if missed == MissedTicks::Skip {
        runs.retain(|tick| now - *tick <= MISFIRE_GRACE);
    }
    runs.reverse();
    let next = match schedule.kind {
        // Intervals stay on their grid: the first grid tick after now.
        Kind::Every(_) => {
            let latest = schedule.ticks_back(due, now, 1).first().copied();
            schedule.next_after(latest.unwrap_or(due))
        }
        Kind::Cron { .. } => schedule.next_after(now),
    };
    Plan { runs, next }
}

fn to_chrono(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

fn from_nanos(nanos: u128) -> Option<chrono::Duration> {
    let seconds = u64::try_from(nanos / 1_000_000_000).ok()?;
    let duration = Duration::new(seconds, (nanos % 1_000_000_000) as u32);
    chrono::Duration::from_std(duration).ok()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn five_and_six_field_forms_and_day_names() {
        let daily = Schedule::cron("0 8 * * *").unwrap();
        assert_eq!(
            daily.next_after(utc(2026, 11, 27, 7, 0)),
            Some(utc(2026, 11, 27, 8, 0))
        );
        let with_seconds = Schedule::cron("30 0 8 * * *").unwrap();
        assert_eq!(
            with_seconds.next_after(utc(2026, 11, 27, 7, 0)),
            Some(utc(2026, 11, 27, 8, 0) + chrono::Duration::seconds(30))
        );
        // 2026-11-27 is a Friday: MON-FRI at 02:00 next fires Monday the 30th.
        let weekdays = Schedule::cron("0 2 * * MON-FRI").unwrap();
        assert_eq!(
            weekdays.next_after(utc(2026, 11, 27, 3, 0)),
            Some(utc(2026, 11, 30, 2, 0))
        );
    }

    #[test]
    fn bad_expressions_zones_and_intervals_are_refused() {
        assert!(Schedule::cron("0 8 * *").is_err());
        assert!(Schedule::cron("61 * * * *").is_err());
        assert!(Schedule::cron("0 0 8 * * * 2026").is_err(), "no year field");
        assert!(matches!(
            Schedule::cron_in("0 8 * * *", "Europe/Brusels"),
            Err(ScheduleError::Zone(_))
        ));
        for bad in ["", "15", "m", "15 m", "0s", "1y", "-5s"] {
            assert!(parse_interval(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_interval("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_interval("500ms").unwrap(), Duration::from_millis(500));
        assert!(Schedule::every(Duration::ZERO).is_err());
        assert!(Schedule::every(Duration::from_micros(500)).is_err());
    }

    #[test]
    fn errors_read_like_the_macros() {
        let error = Schedule::cron("0 25 * * *").unwrap_err().to_string();
        assert!(
            error.starts_with(
                "invalid cron expression `0 25 * * *`: hour `25` is out of range, expected 0-23 ("
            ),
            "{error}"
        );
        let error = parse_zone("Europe/Brusels").unwrap_err().to_string();
        assert!(
            error
                .starts_with("unknown time zone `Europe/Brusels`; did you mean `Europe/Brussels`?"),
            "{error}"
        );
        let error = parse_interval("15 m").unwrap_err().to_string();
        assert!(
            error.starts_with("invalid interval `15 m`: write it without spaces: `15m` ("),
            "{error}"
        );
    }

    #[test]
    fn stored_form_round_trips() {
        for schedule in [
            Schedule::cron_in("0 8 * * *", "Europe/Brussels").unwrap(),
            Schedule::every(Duration::from_secs(900)).unwrap(),
            // Over 2^32 milliseconds: stored as `@every 5184000000ms`.
            Schedule::every(Duration::from_secs(60 * 86_400)).unwrap(),
        ] {
            let back = Schedule::from_stored(&schedule.expression(), schedule.zone()).unwrap();
            assert_eq!(back, schedule);
        }
        for policy in [
            MissedTicks::Skip,
            MissedTicks::RunOnce,
            MissedTicks::CatchUp { max: 7 },
        ] {
            assert_eq!(MissedTicks::from_stored(&policy.as_stored()), policy);
        }
    }

    #[test]
    fn zone_shifts_the_tick() {
        let brussels = Schedule::cron_in("0 8 * * *", "Europe/Brussels").unwrap();
        // 08:00 in Brussels in November (CET, UTC+1) is 07:00 UTC.
        assert_eq!(
            brussels.next_after(utc(2026, 11, 27, 0, 0)),
            Some(utc(2026, 11, 27, 7, 0))
        );
    }

    #[test]
    fn missed_tick_policies_after_three_days() {
        let hourly = Schedule::cron("0 * * * *").unwrap();
        let due = utc(2026, 11, 24, 9, 0);
        let now = utc(2026, 11, 27, 9, 30);
        let skip = plan(&hourly, due, now, MissedTicks::Skip);
        assert!(skip.runs.is_empty());
        assert_eq!(skip.next, Some(utc(2026, 11, 27, 10, 0)));
        let once = plan(&hourly, due, now, MissedTicks::RunOnce);
        assert_eq!(once.runs, [utc(2026, 11, 27, 9, 0)]);
        let catch_up = plan(&hourly, due, now, MissedTicks::CatchUp { max: 5 });
        assert_eq!(
            catch_up.runs,
            (5..=9).map(|h| utc(2026, 11, 27, h, 0)).collect::<Vec<_>>()
        );
        let all = plan(&hourly, due, now, MissedTicks::CatchUp { max: 1000 });
        assert_eq!(
            all.runs.len(),
            3 * 24 + 1,
            "every tick from the 24th 09:00 to the 27th 09:00"
        );
        assert_eq!(all.runs[0], due);
    }

    #[test]
    fn an_on_time_tick_runs_under_every_policy() {
        let daily = Schedule::cron("0 8 * * *").unwrap();
        let due = utc(2026, 11, 27, 8, 0);
        for policy in [
            MissedTicks::Skip,
            MissedTicks::RunOnce,
            MissedTicks::CatchUp { max: 3 },
        ] {
            let plan = plan(&daily, due, due, policy);
            assert_eq!(plan.runs, [due], "{policy:?}");
            assert_eq!(plan.next, Some(utc(2026, 11, 28, 8, 0)));
        }
    }

    #[test]
    fn intervals_stay_on_their_grid() {
        let every = Schedule::every(Duration::from_secs(900)).unwrap();
        let due = utc(2026, 11, 27, 8, 0);
        let late = plan(
            &every,
            due,
            utc(2026, 11, 27, 8, 40),
            MissedTicks::CatchUp { max: 10 },
        );
        assert_eq!(
            late.runs,
            [
                utc(2026, 11, 27, 8, 0),
                utc(2026, 11, 27, 8, 15),
                utc(2026, 11, 27, 8, 30)
            ]
        );
        assert_eq!(late.next, Some(utc(2026, 11, 27, 8, 45)));
    }

    /// Found by `missed_interval_ticks_are_the_newest_on_the_grid`: the count of whole
    /// intervals was capped at `i32::MAX` (a 1 ms interval missed for 25 days gave an old
    /// tick), and counted in whole milliseconds (a 1.0005 s interval gave a tick after `to`).
    #[test]
    fn missed_interval_ticks_are_counted_exactly() {
        let from = utc(2000, 1, 1, 0, 0);
        let every_ms = Schedule::every(Duration::from_millis(1)).unwrap();
        let to = from + chrono::Duration::milliseconds(2_147_483_648);
        assert_eq!(every_ms.ticks_back(from, to, 1), [to]);
        let uneven = Schedule::every(Duration::from_micros(1_000_500)).unwrap();
        let to = from + chrono::Duration::days(10);
        let newest = from + chrono::Duration::microseconds(863_568 * 1_000_500);
        assert_eq!(
            uneven.ticks_back(from, to, 2),
            [newest, newest - chrono::Duration::microseconds(1_000_500)]
        );
    }

    /// Brussels springs forward on 2026-03-29: 02:00 CET becomes 03:00 CEST, so 02:30
    /// does not exist that day. The daily 02:30 job runs at the first instant after the
    /// gap (03:00 CEST = 01:00 UTC), once, and at 02:30 again the next day.
    #[test]
    fn daily_job_in_the_spring_forward_gap_runs_once_after_the_gap() {
        let job = Schedule::cron_in("30 2 * * *", "Europe/Brussels").unwrap();
        let before = utc(2026, 3, 28, 12, 0);
        let on_the_day = job.next_after(before).unwrap();
        assert_eq!(on_the_day, utc(2026, 3, 29, 1, 0));
        let next_day = job.next_after(on_the_day).unwrap();
        assert_eq!(next_day, utc(2026, 3, 30, 0, 30), "02:30 CEST");
    }

    /// Brussels falls back on 2026-10-25: 03:00 CEST becomes 02:00 CET, so 02:xx happens
    /// twice. An hourly job fires at every real hour: 00:00, 01:00, 02:00 (CEST),
    /// 02:00 (CET), 03:00 … — 25 runs that day, one per elapsed hour, none doubled.
    #[test]
    fn hourly_job_through_the_fall_back_hour_fires_every_real_hour() {
        let job = Schedule::cron_in("0 * * * *", "Europe/Brussels").unwrap();
        let day_start = utc(2026, 10, 24, 22, 0); // 00:00 CEST on the 25th
        let day_end = utc(2026, 10, 25, 23, 0); // 00:00 CET on the 26th
        let mut ticks = Vec::new();
        let mut cursor = day_start - chrono::Duration::seconds(1);
        while let Some(next) = job.next_after(cursor) {
            if next >= day_end {
                break;
            }
            ticks.push(next);
            cursor = next;
        }
        assert_eq!(ticks.len(), 25);
        for pair in ticks.windows(2) {
            assert_eq!(pair[1] - pair[0], chrono::Duration::hours(1), "{pair:?}");
        }
    }

    /// A fixed-time daily job at 02:30 on the fall-back day runs once, at the first
    /// 02:30 (CEST), not again an hour later.
    #[test]
    fn daily_job_in_the_fall_back_hour_runs_once() {
        let job = Schedule::cron_in("30 2 * * *", "Europe/Brussels").unwrap();
        let first = job.next_after(utc(2026, 10, 24, 12, 0)).unwrap();
        assert_eq!(first, utc(2026, 10, 25, 0, 30), "02:30 CEST");
        let second = job.next_after(first).unwrap();
        assert_eq!(second, utc(2026, 10, 26, 1, 30), "next day 02:30 CET");
    }
}
