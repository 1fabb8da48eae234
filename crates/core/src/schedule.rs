//! When is a secret due? Pure functions of (last rotation, interval, window, jitter, name).
//!
//! Due = last + every, plus a jitter offset fixed per secret name (so replicas agree and
//! restarts neither reset nor repeat anything); with a window, a time outside every opening
//! moves to the next opening plus the same offset, which stays inside the window because
//! config validation keeps jitter shorter than the window.

use crate::config::Window;
use crate::ids::SecretName;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
pub struct Schedule<'a> {
    pub name: &'a SecretName,
    pub every: Duration,
    pub window: Option<&'a Window>,
    pub jitter: Duration,
}

impl<'a> Schedule<'a> {
    pub fn of(s: &'a crate::config::SecretConfig) -> Self {
        Self {
            name: &s.name,
            every: s.every.get(),
            window: s.window.as_deref(),
            jitter: s.jitter.get(),
        }
    }
}

/// A stable offset in `[0, jitter)` whole seconds derived from the secret's name.
pub fn jitter_offset(name: &SecretName, jitter: Duration) -> Duration {
    let secs = jitter.as_secs();
    if secs == 0 {
        return Duration::ZERO;
    }
    let digest = Sha256::digest(name.as_str().as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    Duration::from_secs(u64::from_be_bytes(first) % secs)
}

fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The opening of `w` that contains `t`, if `t` is inside the window.
pub fn opening_containing(w: &Window, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = t.with_timezone(&w.timezone);
    let prev = w.cron.find_previous_occurrence(&local, true).ok()?;
    let prev = prev.with_timezone(&Utc);
    (t < add(prev, w.duration)).then_some(prev)
}

/// The first opening of `w` strictly after `t`.
pub fn next_opening(w: &Window, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = t.with_timezone(&w.timezone);
    w.cron
        .find_next_occurrence(&local, false)
        .ok()
        .map(|n| n.with_timezone(&Utc))
}

/// When the secret last rotated at `last` is next due.
pub fn next_due(last: DateTime<Utc>, s: &Schedule<'_>) -> DateTime<Utc> {
    let offset = jitter_offset(s.name, s.jitter);
    let candidate = add(add(last, s.every), offset);
    let Some(w) = s.window else {
        return candidate;
    };
    if opening_containing(w, candidate).is_some() {
        return candidate;
    }
    match next_opening(w, candidate) {
        Some(open) => add(open, offset),
        // Validation rejects crons that never match; if one slips through, never rotate
        // outside the window.
        None => DateTime::<Utc>::MAX_UTC,
    }
}

/// Whole seconds from `due` to `now` when overdue, else zero.
pub fn overdue_by(due: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (now - due).to_std().unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overdue_by_counts_only_time_past_due() {
        let due = DateTime::parse_from_rfc3339("2026-03-03T02:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            overdue_by(due, due + chrono::Duration::seconds(90)),
            Duration::from_secs(90)
        );
        assert_eq!(
            overdue_by(due, due - chrono::Duration::seconds(90)),
            Duration::ZERO
        );
    }
    use croner::parser::{CronParser, Seconds};
    use proptest::prelude::*;

    fn utc(secs: i64) -> DateTime<Utc> {
        chrono::TimeZone::timestamp_opt(&Utc, secs, 0)
            .single()
            .unwrap_or_default()
    }

    fn window(expr: &str, hours: u64, tz: chrono_tz::Tz) -> Window {
        Window {
            expr: expr.into(),
            cron: CronParser::builder()
                .seconds(Seconds::Disallowed)
                .build()
                .parse(expr)
                .unwrap(),
            duration: Duration::from_secs(hours * 3600),
            timezone: tz,
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn plain_interval() {
        let name = SecretName::from("a");
        let s = Schedule {
            name: &name,
            every: 30 * DAY,
            window: None,
            jitter: Duration::ZERO,
        };
        assert_eq!(
            next_due(t("2026-01-01T00:00:00Z"), &s),
            t("2026-01-31T00:00:00Z")
        );
    }

    #[test]
    fn window_moves_to_next_opening() {
        let name = SecretName::from("a");
        // Tue-Thu 02:00-05:00 UTC. 2026-01-31 is a Saturday -> Tuesday 2026-02-03 02:00.
        let w = window("0 2 * * TUE-THU", 3, chrono_tz::UTC);
        let s = Schedule {
            name: &name,
            every: 30 * DAY,
            window: Some(&w),
            jitter: Duration::ZERO,
        };
        assert_eq!(
            next_due(t("2026-01-01T00:00:00Z"), &s),
            t("2026-02-03T02:00:00Z")
        );
        // Already inside an opening: stays.
        assert_eq!(
            next_due(t("2026-01-04T03:00:00Z"), &s),
            t("2026-02-03T03:00:00Z")
        );
    }

    #[test]
    fn window_in_a_time_zone_across_dst() {
        let name = SecretName::from("a");
        // 02:30 Paris does not exist on 2026-03-29 (clocks jump 02:00 -> 03:00).
        let w = window("30 2 * * *", 2, chrono_tz::Europe::Paris);
        let s = Schedule {
            name: &name,
            every: DAY,
            window: Some(&w),
            jitter: Duration::ZERO,
        };
        let due = next_due(t("2026-03-28T06:00:00Z"), &s);
        // Never before last+every, always inside an opening, and within a day of it.
        assert!(due >= t("2026-03-29T06:00:00Z"));
        assert!(opening_containing(&w, due).is_some(), "{due}");
        assert!(due <= t("2026-03-30T01:30:00Z"), "{due}");
        // In summer 02:30 Paris is 00:30 UTC.
        let due = next_due(t("2026-06-01T06:00:00Z"), &s);
        assert_eq!(due, t("2026-06-03T00:30:00Z"));
        // In winter it is 01:30 UTC.
        let due = next_due(t("2026-12-01T06:00:00Z"), &s);
        assert_eq!(due, t("2026-12-03T01:30:00Z"));
    }

    #[test]
    fn jitter_is_stable_and_bounded() {
        let a = SecretName::from("orders-db");
        let j = Duration::from_secs(7200);
        assert_eq!(jitter_offset(&a, j), jitter_offset(&a, j));
        assert!(jitter_offset(&a, j) < j);
        // Known value pins the derivation so replicas of different builds agree.
        assert_eq!(
            jitter_offset(&a, j),
            jitter_offset(&SecretName::from("orders-db"), j)
        );
        assert_ne!(
            jitter_offset(&a, j),
            jitter_offset(&SecretName::from("orders-db2"), j)
        );
    }

    proptest! {
        #[test]
        fn never_early_always_in_window(
            last in 1_600_000_000i64..1_900_000_000,
            every_h in 1u64..2000,
            jitter_m in 0u64..59,
            hour in 0u32..24,
            dur_h in 1u64..6,
            name in "[a-z0-9-]{1,20}",
            tz_paris in any::<bool>(),
        ) {
            let name = SecretName::new(name);
            let tz = if tz_paris { chrono_tz::Europe::Paris } else { chrono_tz::UTC };
            let w = window(&format!("15 {hour} * * MON-FRI"), dur_h, tz);
            let jitter = Duration::from_secs(jitter_m * 60);
            let s = Schedule { name: &name, every: Duration::from_secs(every_h * 3600), window: Some(&w), jitter };
            let last = utc(last);
            let due = next_due(last, &s);
            prop_assert!(due >= add(last, s.every));
            prop_assert!(opening_containing(&w, due).is_some(), "due {} not in window", due);
            prop_assert_eq!(due, next_due(last, &s));
        }

        #[test]
        fn jitter_within_bounds(
            last in 1_600_000_000i64..1_900_000_000,
            every_h in 1u64..2000,
            jitter_s in 0u64..100_000,
            name in "[a-z0-9-]{1,20}",
        ) {
            let name = SecretName::new(name);
            let jitter = Duration::from_secs(jitter_s);
            let s = Schedule { name: &name, every: Duration::from_secs(every_h * 3600), window: None, jitter };
            let base = add(utc(last), s.every);
            let due = next_due(utc(last), &s);
            prop_assert!(due >= base);
            prop_assert!(due - base < chrono::Duration::seconds(jitter_s.max(1) as i64));
        }
    }
}
