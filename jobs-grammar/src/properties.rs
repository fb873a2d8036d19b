//! Property tests of every string this crate reads: arbitrary text never panics, what is
//! written the documented way reads back as the value it describes, and a refusal says
//! what is wrong. `PROPTEST_CASES` sets how many cases each property runs (256 by
//! default).

use std::time::Duration;

use proptest::prelude::*;

use crate::{
    BackoffPolicy, DurationUse, format_duration, parse_backoff, parse_cron, parse_duration,
};

const UNITS: [(&str, u64); 5] = [
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

fn any_use() -> impl Strategy<Value = DurationUse> {
    prop_oneof![
        Just(DurationUse::Interval),
        Just(DurationUse::Timeout),
        Just(DurationUse::Delay),
        Just(DurationUse::Window),
        Just(DurationUse::Setting),
    ]
}

/// Text near the grammar: digits, unit letters, spaces and a few strangers, so most
/// cases get past the first character.
fn duration_like() -> impl Strategy<Value = String> {
    "[0-9msdh \t.,µé-]{0,24}"
}

/// One to four `<number><unit>` parts, each with the milliseconds it stands for.
fn duration_parts() -> impl Strategy<Value = Vec<(u32, usize)>> {
    prop::collection::vec((any::<u32>(), 0..UNITS.len()), 1..5)
}

fn written(parts: &[(u32, usize)], separators: &[bool]) -> String {
    let mut text = String::new();
    for (index, (number, unit)) in parts.iter().enumerate() {
        if index > 0 && separators[index % separators.len()] {
            text.push(' ');
        }
        text.push_str(&format!("{number}{}", UNITS[*unit].0));
    }
    text
}

fn total_millis(parts: &[(u32, usize)]) -> u64 {
    parts
        .iter()
        .map(|(number, unit)| u64::from(*number) * UNITS[*unit].1)
        .sum()
}

proptest! {
    #[test]
    fn any_text_is_a_duration_or_an_error_that_quotes_it(
        text in prop_oneof![any::<String>(), duration_like()],
        used_as in any_use(),
    ) {
        match parse_duration(&text, used_as) {
            Ok(duration) => {
                prop_assert!(used_as == DurationUse::Setting || !duration.is_zero());
                prop_assert_eq!(duration.subsec_nanos() % 1_000_000, 0);
            }
            Err(error) => {
                prop_assert_eq!(error.text(), text.as_str());
                let message = error.message();
                let quoted = format!("`{text}`");
                prop_assert!(message.contains(&quoted) || text.trim().is_empty(), "{}", message);
            }
        }
    }

    #[test]
    fn parts_with_or_without_spaces_add_up(
        parts in duration_parts(),
        separators in prop::collection::vec(any::<bool>(), 1..4),
        padding in "[ \t]{0,2}",
    ) {
        let text = format!("{padding}{}{padding}", written(&parts, &separators));
        let millis = total_millis(&parts);
        prop_assert_eq!(
            parse_duration(&text, DurationUse::Setting),
            Ok(Duration::from_millis(millis))
        );
        let as_interval = parse_duration(&text, DurationUse::Interval);
        prop_assert_eq!(as_interval.is_ok(), millis > 0, "{:?}", as_interval);
    }

    #[test]
    fn a_space_between_a_number_and_its_unit_is_refused_with_the_joined_form(
        parts in duration_parts(),
        spaced in any::<prop::sample::Index>(),
    ) {
        prop_assume!(total_millis(&parts) > 0);
        let spaced = spaced.index(parts.len());
        let mut text = String::new();
        for (index, (number, unit)) in parts.iter().enumerate() {
            let gap = if index == spaced { " " } else { "" };
            text.push_str(&format!("{number}{gap}{}", UNITS[*unit].0));
        }
        let error = parse_duration(&text, DurationUse::Interval).unwrap_err();
        let joined = written(&parts, &[false]);
        prop_assert_eq!(
            error.message(),
            format!("invalid interval `{text}`: write it without spaces: `{joined}`")
        );
        prop_assert!(parse_duration(&joined, DurationUse::Interval).is_ok());
    }

    #[test]
    fn a_formatted_duration_reads_back_to_its_whole_milliseconds(
        seconds in any::<u64>(),
        nanos in 0..1_000_000_000u32,
    ) {
        let duration = Duration::new(seconds, nanos);
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        let text = format_duration(duration);
        prop_assert_eq!(
            parse_duration(&text, DurationUse::Setting),
            Ok(Duration::from_millis(millis)),
            "{}", text
        );
    }

    #[test]
    fn any_text_is_a_backoff_or_an_error_that_quotes_it(
        text in prop_oneof![
            any::<String>(),
            "(fixed|exponential|linear)?[( ]{0,2}[0-9a-z =,]{0,20}[) ]{0,2}",
        ],
    ) {
        match parse_backoff(&text) {
            Ok(BackoffPolicy::Fixed(delay)) => prop_assert!(!delay.is_zero()),
            Ok(BackoffPolicy::Exponential { base, max }) => {
                prop_assert!(!base.is_zero());
                prop_assert!(max.is_none_or(|max| max >= base));
            }
            Err(error) => {
                prop_assert_eq!(error.text(), text.as_str());
                let start = format!("invalid backoff `{text}`: ");
                prop_assert!(error.message().starts_with(&start));
            }
        }
    }

    #[test]
    fn a_written_backoff_reads_back_as_its_policy(
        base in 1..u64::from(u32::MAX),
        extra in prop::option::of(0..u64::from(u32::MAX)),
        fixed in any::<bool>(),
        space in "[ ]{0,2}",
    ) {
        let base_text = format_duration(Duration::from_millis(base));
        let (text, policy) = if fixed {
            (
                format!("{space}fixed({space}{base_text}{space}){space}"),
                BackoffPolicy::Fixed(Duration::from_millis(base)),
            )
        } else {
            let max = extra.map(|extra| Duration::from_millis(base + extra));
            let text = match max {
                Some(max) => format!(
                    "exponential({base_text},{space}max{space}={space}{})",
                    format_duration(max)
                ),
                None => format!("exponential({space}{base_text})"),
            };
            (text, BackoffPolicy::Exponential { base: Duration::from_millis(base), max })
        };
        prop_assert_eq!(parse_backoff(&text), Ok(policy));
    }

    #[test]
    fn an_exponential_max_below_its_base_is_refused(
        base in 2..u64::from(u32::MAX),
        below in 1..u64::from(u32::MAX),
    ) {
        let max = base - below.min(base - 1);
        let text = format!(
            "exponential({}, max = {})",
            format_duration(Duration::from_millis(base)),
            format_duration(Duration::from_millis(max))
        );
        let error = parse_backoff(&text).unwrap_err();
        prop_assert!(error.message().ends_with("its `max` is shorter than its first delay"));
    }
}

/// One cron field from the pieces crons are made of, in range or not.
fn cron_field() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("*".to_owned()),
        Just("?".to_owned()),
        Just("L".to_owned()),
        (0..100u32).prop_map(|n| n.to_string()),
        (0..100u32, 0..100u32).prop_map(|(a, b)| format!("{a}-{b}")),
        (0..100u32, 0..100u32).prop_map(|(a, b)| format!("*/{a}{b}")),
        (1..32u32).prop_map(|n| format!("{n}W")),
        (0..8u32, 0..6u32).prop_map(|(d, n)| format!("{d}#{n}")),
        "(MON|TUE|SUN|JAN|DEC|mon|jul|XYZ)(-(FRI|SAT|jun))?",
        "[0-9A-Za-z*/,#?LW-]{1,6}",
    ];
    prop::collection::vec(atom, 1..3).prop_map(|atoms| atoms.join(","))
}

/// The 5 or 6 fields of a cron that can fire, each in its range.
fn valid_cron() -> impl Strategy<Value = String> {
    fn field(low: u32, high: u32) -> impl Strategy<Value = String> {
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
    }
    (
        prop::option::of(field(0, 59)),
        field(0, 59),
        field(0, 23),
        // Days every month has, so the expression fires at least once a year.
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
    fn any_text_is_a_cron_or_an_error_that_quotes_it(
        text in prop_oneof![
            any::<String>(),
            prop::collection::vec(cron_field(), 0..8).prop_map(|fields| fields.join(" ")),
        ],
    ) {
        match parse_cron(&text) {
            Ok(cron) => prop_assert_eq!(cron.as_str(), text.trim()),
            Err(error) => {
                prop_assert_eq!(error.expression(), text.as_str());
                let message = error.message();
                let count = text.split_whitespace().count();
                if count != 0 && !(5..=6).contains(&count) && !text.trim().starts_with('@') {
                    let end = format!("it has {count} fields, not 5 or 6");
                    prop_assert!(message.ends_with(&end), "{}", message);
                }
            }
        }
    }

    #[test]
    fn a_cron_of_fields_in_range_parses_and_reads_back(
        expression in valid_cron(),
        padding in "[ \t]{0,2}",
    ) {
        let parsed = parse_cron(&format!("{padding}{expression}{padding}"));
        prop_assert!(parsed.is_ok(), "{:?}", parsed);
        let parsed = parsed.unwrap();
        prop_assert_eq!(parsed.as_str(), expression.as_str());
        prop_assert_eq!(parse_cron(parsed.as_str()).map(|cron| cron.into_parts().0), Ok(expression));
    }

    #[test]
    fn a_field_out_of_range_is_named_with_its_range(
        expression in valid_cron(),
        field in any::<prop::sample::Index>(),
        value in 60..1000u32,
    ) {
        let mut fields: Vec<String> = expression.split(' ').map(str::to_owned).collect();
        let names: &[(&str, &str)] = if fields.len() == 6 {
            &[
                ("second", "0-59"), ("minute", "0-59"), ("hour", "0-23"),
                ("day of month", "1-31"), ("month", "1-12 or JAN-DEC"),
                ("day of week", "0-7 or SUN-SAT"),
            ]
        } else {
            &[
                ("minute", "0-59"), ("hour", "0-23"), ("day of month", "1-31"),
                ("month", "1-12 or JAN-DEC"), ("day of week", "0-7 or SUN-SAT"),
            ]
        };
        let index = field.index(fields.len());
        fields[index] = value.to_string();
        let text = fields.join(" ");
        let (name, range) = names[index];
        let message = parse_cron(&text).unwrap_err().message();
        prop_assert_eq!(
            message,
            format!("invalid cron expression `{text}`: {name} `{value}` is out of range, expected {range}")
        );
    }
}
