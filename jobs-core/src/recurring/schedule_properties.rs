//! Property tests of recurring schedules as the runtime reads them (a cron in a zone, an
//! interval, their stored forms): they never panic, a cron that can fire has a next
//! tick after any instant, and the ticks looked for backwards (missed ticks) are the
//! ones looking forwards finds. `PROPTEST_CASES` sets the cases (256 by default).

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;

use super::schedule::{Schedule, parse_interval};

/// Zones with daylight saving (north and south, a 30-minute shift), odd offsets, none.
const ZONES: [&str; 6] = [
    "UTC",
    "Europe/Brussels",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "America/Santiago",
];

/// An instant from 2000 to 2100, to the millisecond.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (946_684_800_000i64..4_102_444_800_000)
        .prop_map(|millis| Utc.timestamp_millis_opt(millis).single().expect("in range"))
}

/// A cron of fields in range that fires at least once a year (days 1 to 28).
fn firing_cron() -> impl Strategy<Value = String> {
    fn field(low: u32, high: u32) -> BoxedStrategy<String> {
        prop_oneof![
            Just("*".to_owned()),
            (low..=high).prop_map(|n| n.to_string()),
            (low..=high, low..=high).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
            (1..=high.max(1)).prop_map(|step| format!("*/{step}")),
            prop::collection::btree_set(low..=high, 1..4).prop_map(|set| {
                set.into_iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            }),
        ]
        .boxed()
    }
    (
        prop::option::of(field(0, 59)),
        field(0, 59),
        field(0, 23),
        field(1, 28),
        field(1, 12),
        field(0, 7),
    )
        .prop_map(|(second, minute, hour, day, month, weekday)| {
            let mut fields: Vec<String> = second.into_iter().collect();
            fields.extend([minute, hour, day, month, weekday]);
            fields.join(" ")
        })
}

proptest! {
    #[test]
    fn any_interval_text_is_refused_or_ticks_that_far_apart(
        text in prop_oneof![any::<String>(), "[0-9]{1,12}(ms|s|m|h|d| |x){1,2}"],
        after in instant(),
    ) {
        let Ok(interval) = parse_interval(&text) else {
            return Ok(());
        };
        let schedule = Schedule::every(interval).expect("a parsed interval is a schedule");
        let stored = Schedule::from_stored(&schedule.expression(), schedule.zone());
        prop_assert_eq!(stored.as_ref(), Ok(&schedule));
        let expected = chrono::Duration::from_std(interval)
            .ok()
            .and_then(|step| after.checked_add_signed(step));
        prop_assert_eq!(schedule.next_after(after), expected);
    }

    #[test]
    fn any_cron_and_zone_text_is_refused_or_read_back_from_its_stored_form(
        expression in prop_oneof![any::<String>(), firing_cron()],
        zone in prop_oneof![any::<String>(), prop::sample::select(&ZONES[..]).prop_map(str::to_owned)],
        after in instant(),
    ) {
        let Ok(schedule) = Schedule::cron_in(&expression, &zone) else {
            return Ok(());
        };
        let stored = Schedule::from_stored(&schedule.expression(), schedule.zone());
        prop_assert_eq!(stored.as_ref(), Ok(&schedule));
        if let Some(next) = schedule.next_after(after) {
            prop_assert!(next > after);
        }
    }

    #[test]
    fn a_cron_that_can_fire_has_a_next_tick_after_any_instant(
        expression in firing_cron(),
        zone in prop::sample::select(&ZONES[..]),
        after in instant(),
    ) {
        let schedule = Schedule::cron_in(&expression, zone).expect("fields in range");
        let next = schedule.next_after(after);
        prop_assert!(next.is_some(), "{} in {} after {}", expression, zone, after);
        let next = next.unwrap();
        prop_assert!(next > after);
        prop_assert!(next - after <= chrono::Duration::days(366 * 8), "{}", next);
        // Nothing fires in between: looking from just before the tick finds it again.
        let just_before = (next - chrono::Duration::milliseconds(1)).max(after);
        prop_assert_eq!(schedule.next_after(just_before), Some(next));
    }

    #[test]
    fn missed_cron_ticks_are_the_ticks_looking_forward_finds(
        expression in firing_cron(),
        zone in prop::sample::select(&ZONES[..]),
        after in instant(),
        count in 1..6usize,
    ) {
        let schedule = Schedule::cron_in(&expression, zone).expect("fields in range");
        let mut forward = Vec::new();
        let mut cursor = after;
        while forward.len() < count {
            let next = schedule.next_after(cursor).expect("a cron that can fire");
            forward.push(next);
            cursor = next;
        }
        let (first, last) = (forward[0], forward[count - 1]);
        let mut back = schedule.ticks_back(first, last, count + 1);
        back.reverse();
        prop_assert_eq!(back, forward, "{} in {}", expression, zone);
    }

    #[test]
    fn missed_interval_ticks_are_the_newest_on_the_grid(
        millis in prop_oneof![1..2_000u64, 1..86_400_000u64, 1..40 * 86_400_000u64],
        nanos in prop_oneof![Just(0u32), 0..1_000_000u32],
        from in instant(),
        span in prop_oneof![0..86_400_000i64, 0..100 * 365 * 86_400_000i64],
        limit in 1..5usize,
    ) {
        let interval = Duration::from_millis(millis) + Duration::from_nanos(u64::from(nanos));
        let schedule = Schedule::every(interval).expect("at least a millisecond");
        let to = from + chrono::Duration::milliseconds(span);
        let ticks = schedule.ticks_back(from, to, limit);
        let step = i128::try_from(interval.as_nanos()).expect("small");
        let span_nanos = i128::from(span) * 1_000_000;
        let newest = span_nanos / step;
        let expected: Vec<DateTime<Utc>> = (0..=newest)
            .rev()
            .take(limit)
            .map(|k| {
                let nanos = i64::try_from(k * step).expect("within a century");
                from + chrono::Duration::nanoseconds(nanos)
            })
            .collect();
        prop_assert_eq!(ticks, expected);
    }
}
