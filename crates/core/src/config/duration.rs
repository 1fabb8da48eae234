//! Human durations (`30d`, `12h`, `90s`) with bounds checks.

use std::time::Duration;

/// A configured duration in 8 bytes (nanoseconds; a `Duration` takes 16): every secret's
/// record holds three. Exact up to 584 years, the most any setting allows is 10; longer
/// saturates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CompactDuration(u64);

impl CompactDuration {
    pub const fn get(self) -> Duration {
        Duration::from_nanos(self.0)
    }
}

impl From<Duration> for CompactDuration {
    fn from(d: Duration) -> Self {
        CompactDuration(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}

const UNITS: &str = "a number and a unit: s, m, h, d or w, e.g. \"30d\", \"12h\", \"90s\"";

/// Parses a duration like `30d` or `1h 30m`. Errors say what was wrong and what is allowed.
pub fn parse(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(format!("empty duration (use {UNITS})"));
    }
    if t.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("duration \"{s}\" has no unit (use {UNITS})"));
    }
    if t.starts_with('-') {
        return Err(format!("duration \"{s}\" is negative (use {UNITS})"));
    }
    // Months and years have no fixed length; refuse them rather than guess.
    if units(t).any(|u| matches!(u, "M" | "month" | "months" | "y" | "year" | "years")) {
        return Err(format!(
            "duration \"{s}\": months and years are ambiguous (use {UNITS})"
        ));
    }
    match humantime::parse_duration(t) {
        Ok(d) => Ok(d),
        Err(humantime::DurationError::UnknownUnit { unit, .. }) => {
            Err(format!("unknown unit \"{unit}\" in \"{s}\" (use {UNITS})"))
        }
        Err(humantime::DurationError::NumberOverflow) => {
            Err(format!("duration \"{s}\" is too large (use {UNITS})"))
        }
        Err(_) => Err(format!("invalid duration \"{s}\" (use {UNITS})")),
    }
}

/// The unit words of a duration like `1M 2d` or `30 days`.
fn units(t: &str) -> impl Iterator<Item = &str> {
    t.split(|c: char| c.is_ascii_digit() || c.is_whitespace() || c == '.')
        .filter(|u| !u.is_empty())
}

/// Parses and checks `min <= d <= max`.
pub fn parse_within(s: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = parse(s)?;
    if d < min || d > max {
        return Err(format!(
            "{s} is out of range (allowed {} to {})",
            format(min),
            format(max)
        ));
    }
    Ok(d)
}

/// Formats a duration in the largest whole units, e.g. `30d`, `1h 30m`.
pub fn format(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut parts = Vec::new();
    for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= len {
            parts.push(format!("{}{unit}", secs / len));
            secs %= len;
        }
    }
    parts.join(" ")
}

/// A duration in words, for people checking what a value means: "30 days", "1 minute",
/// "1.5 days", "12 hours".
pub fn describe(d: Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = if secs >= 86_400 {
        (secs as f64 / 86_400.0, "day")
    } else if secs >= 3_600 {
        (secs as f64 / 3_600.0, "hour")
    } else if secs >= 60 {
        (secs as f64 / 60.0, "minute")
    } else {
        (secs as f64, "second")
    };
    // One decimal at most; whole numbers without one.
    let rounded = (n * 10.0).round() / 10.0;
    let text = if rounded.fract() == 0.0 {
        format!("{}", rounded as u64)
    } else {
        format!("{rounded:.1}")
    };
    let plural = if text == "1" { "" } else { "s" };
    format!("{text} {unit}{plural}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_in_words() {
        assert_eq!(describe(parse("30d").unwrap()), "30 days");
        assert_eq!(describe(parse("720h").unwrap()), "30 days");
        assert_eq!(describe(parse("1m").unwrap()), "1 minute");
        assert_eq!(describe(parse("36h").unwrap()), "1.5 days");
        assert_eq!(describe(parse("12h").unwrap()), "12 hours");
        assert_eq!(describe(parse("90s").unwrap()), "1.5 minutes");
        assert_eq!(describe(parse("1d").unwrap()), "1 day");
    }

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse("30d").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse("12h").unwrap(), Duration::from_secs(12 * 3_600));
        assert_eq!(parse("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("1h 30m").unwrap(), Duration::from_secs(5_400));
        assert_eq!(parse("2w").unwrap(), Duration::from_secs(14 * 86_400));
    }

    #[test]
    fn rejects_bad_forms_with_reasons() {
        assert!(parse("30x").unwrap_err().contains("unknown unit \"x\""));
        assert!(parse("30").unwrap_err().contains("no unit"));
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(parse("1y").unwrap_err().contains("ambiguous"));
        assert!(parse("1M 1d").unwrap_err().contains("ambiguous"));
        assert!(parse("2 years").unwrap_err().contains("ambiguous"));
        assert_eq!(parse("30 days").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse("1 day").unwrap(), Duration::from_secs(86_400));
        assert!(parse("-5m").unwrap_err().contains("negative"));
    }

    #[test]
    fn formats_round_trip() {
        for s in ["30d", "1h 30m", "90s", "2d 3h"] {
            assert_eq!(format(parse(s).unwrap()), s.replace("90s", "1m 30s"));
        }
    }
}
