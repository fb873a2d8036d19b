//! Releases of an application, as its servers register their `#[recurring]` jobs: what a
//! registration did, and how two releases compare.

/// What [`RecurringStore::recurring_register`](super::RecurringStore::recurring_register) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Registration {
    /// The declarations are stored; this many of the application's rows it no longer
    /// declares were disabled.
    Registered { disabled: u64 },
    /// A newer release of the application (this one) registered its declarations; they
    /// were left alone.
    Newer(String),
}

/// How two releases of an application compare: by their dot-separated parts, numbers as
/// numbers (`1.10.0` after `1.9.2`), other parts as text; a release with a pre-release
/// part (`2.0.0-rc.1`) before the same one without; an empty release before any other.
/// Build metadata (`+…`) is ignored.
pub(crate) fn release_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn parts(release: &str) -> (&str, Option<&str>) {
        let release = release.split('+').next().unwrap_or_default();
        match release.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (release, None),
        }
    }
    fn dotted(a: &str, b: &str) -> Ordering {
        let mut left = a.split('.');
        let mut right = b.split('.');
        loop {
            match (left.next(), right.next()) {
                (None, None) => return Ordering::Equal,
                (None, Some(_)) => return Ordering::Less,
                (Some(_), None) => return Ordering::Greater,
                (Some(x), Some(y)) => {
                    let order = match (x.parse::<u64>(), y.parse::<u64>()) {
                        (Ok(x), Ok(y)) => x.cmp(&y),
                        (Ok(_), Err(_)) => Ordering::Less,
                        (Err(_), Ok(_)) => Ordering::Greater,
                        (Err(_), Err(_)) => x.cmp(y),
                    };
                    if order != Ordering::Equal {
                        return order;
                    }
                }
            }
        }
    }
    if a.is_empty() || b.is_empty() {
        return (!a.is_empty()).cmp(&!b.is_empty());
    }
    let ((core_a, pre_a), (core_b, pre_b)) = (parts(a), parts(b));
    dotted(core_a, core_b).then_with(|| match (pre_a, pre_b) {
        (None, None) => Ordering::Equal,
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (Some(x), Some(y)) => dotted(x, y),
    })
}

#[cfg(test)]
mod release_tests {
    use super::release_order;
    use std::cmp::Ordering::{Equal, Greater, Less};

    #[test]
    fn releases_compare_as_versions() {
        for (a, b, order) in [
            ("1.10.0", "1.9.2", Greater),
            ("2.0.0", "2.0.0", Equal),
            ("2.0.0-rc.1", "2.0.0", Less),
            ("2.0.0-rc.2", "2.0.0-rc.10", Less),
            ("1.0", "1.0.1", Less),
            ("1.0.0+build.7", "1.0.0", Equal),
            ("", "0.0.1", Less),
            ("", "", Equal),
            ("2026.12.06", "2026.12.5", Greater),
            ("abc", "abd", Less),
        ] {
            assert_eq!(release_order(a, b), order, "{a} vs {b}");
            assert_eq!(release_order(b, a), order.reverse(), "{b} vs {a}");
        }
    }
}
