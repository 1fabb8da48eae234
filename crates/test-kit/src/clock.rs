//! Time for tests: the fake wall clock and an order of calls across fakes.
//!
//! Timers in the engine and the scheduler use tokio time (tests pause and advance it);
//! anything compared with dates stored in AWS asks a [`Clock`]. [`ManualClock`] starts at
//! a given date and then follows tokio's clock, and can jump (`set`) like a machine whose
//! wall clock is stepped or that slept while its monotonic clock stood still.

use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use rotator_core::clock::{Clock, ManualClock, SystemClock};

/// An RFC 3339 instant; panics on a malformed literal (test code).
pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339:?} is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

/// Moves a manual clock's wall time by `by` (forwards or backwards) without moving tokio
/// time: a wall-clock step.
pub fn jump(clock: &ManualClock, by: chrono::Duration) {
    clock.set(clock.now() + by);
}

/// A counter shared by several fakes, so a test can order store calls against ECS calls
/// (e.g. "every service was forced after AWSCURRENT moved"), which timestamps on paused
/// time cannot do.
#[derive(Clone, Debug, Default)]
pub struct Sequence(Arc<AtomicU64>);

impl Sequence {
    /// The next number: 1, 2, 3, ...
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn the_manual_clock_follows_tokio_time_and_jumps() {
        let c = ManualClock::new(at("2026-03-03T02:00:00Z"));
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(c.now(), at("2026-03-03T02:01:30Z"));
        jump(&c, chrono::Duration::days(-1));
        assert_eq!(c.now(), at("2026-03-02T02:01:30Z"));
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(c.now(), at("2026-03-02T02:02:00Z"));
    }

    #[test]
    fn a_sequence_shared_by_clones_counts_once() {
        let a = Sequence::default();
        let b = a.clone();
        assert_eq!((a.next(), b.next(), a.next()), (1, 2, 3));
    }
}
