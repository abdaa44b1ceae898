//! The `headroom` strategy: among the profiles that can serve a request, the one with the most
//! left in its tightest usage window goes first, by the provider's own figures (the `x-codex-*`
//! windows of its latest answer, from this process or another). So the logins of a pool drain
//! together and the first usage limit comes as late as it can; failover and cooldowns work as
//! with any strategy.
//!
//! A window whose reset has passed counts as unused; a login never seen answering counts as
//! unused too (its first answer tells). Profiles whose upstream reports no windows (API keys) go
//! after those that do, in the route's order: they are the fallback, not the pool.

use chrono::{DateTime, Utc};

use crate::store::Usage;

/// A conversation stays with its profile while this much (percent) is left in that profile's
/// tightest window; below it, it moves to the profile with the most left before the limit
/// interrupts it.
pub(super) const STICKY_MIN_LEFT: f64 = 5.0;

/// What is left of the tightest window, in percent (100 when nothing is known).
pub(super) fn left(usage: Option<&Usage>, now: DateTime<Utc>) -> f64 {
    usage
        .into_iter()
        .flat_map(|usage| &usage.windows)
        .map(|window| {
            if window.resets_at.is_some_and(|at| at <= now) {
                100.0
            } else {
                100.0 - window.used_percent
            }
        })
        .fold(100.0, f64::min)
        .clamp(0.0, 100.0)
}

/// Orders `list` by headroom: profiles with windows (`Some(left)`) first, the most left first;
/// then the others, each group keeping its order among equals.
pub(super) fn order<T>(list: &mut [T], left: impl Fn(&T) -> Option<f64>) {
    list.sort_by(|a, b| match (left(a), left(b)) {
        (Some(a), Some(b)) => b.total_cmp(&a),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::UsageWindow;

    fn usage(windows: &[(f64, Option<i64>)], now: DateTime<Utc>) -> Usage {
        Usage {
            windows: windows
                .iter()
                .map(|(used, resets_in)| UsageWindow {
                    name: "w".into(),
                    used_percent: *used,
                    window_minutes: Some(300),
                    resets_at: resets_in.map(|secs| now + chrono::Duration::seconds(secs)),
                })
                .collect(),
            observed_at: now,
        }
    }

    /// The tightest window decides; a window past its reset is unused; nothing known is 100.
    #[test]
    fn the_tightest_window_decides() {
        let now = Utc::now();
        assert_eq!(
            left(
                Some(&usage(&[(30.0, Some(60)), (80.0, Some(600))], now)),
                now
            ),
            20.0
        );
        assert_eq!(left(Some(&usage(&[(95.0, Some(-1))], now)), now), 100.0);
        assert_eq!(left(None, now), 100.0);
        assert_eq!(left(Some(&usage(&[(120.0, None)], now)), now), 0.0);
    }

    /// Most left first, ties in their order, profiles without windows last in theirs.
    #[test]
    fn most_left_first() {
        let mut list = [
            ("a", Some(20.0)),
            ("key", None),
            ("b", Some(70.0)),
            ("c", Some(20.0)),
            ("key2", None),
        ];
        order(&mut list, |(_, left)| *left);
        let names: Vec<&str> = list.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["b", "a", "c", "key", "key2"]);
    }
}
