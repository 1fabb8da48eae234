//! When and how long to wait before trying a call again: 429 (honouring `Retry-After`,
//! bounded), 5xx and timeouts for calls that are safe to repeat, with full-jitter
//! exponential backoff otherwise. A create (POST) is repeated only after a 429, which
//! IBM answers before doing anything: after a 5xx or a timeout it may have happened, and
//! the store's own checks decide instead.

use crate::error::{AwsError, ErrorClass};
use crate::random::{OsRandom, Random};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (IBM's SDKs: 1 + 4 retries).
    pub max_attempts: u32,
    /// Backoff of the first retry (doubled each time, capped at `max_backoff`).
    pub base: Duration,
    pub max_backoff: Duration,
    /// `Retry-After` is honoured up to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

/// Whether a call may be repeated blindly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotence {
    /// GET, PATCH (merge patch), DELETE.
    Safe,
    /// POST: repeated only after a 429.
    Create,
}

impl RetryPolicy {
    /// Whether the failure of `attempt` (1-based) is worth another try.
    pub fn should_retry(&self, e: &AwsError, attempt: u32, idem: Idempotence) -> bool {
        if attempt >= self.max_attempts {
            return false;
        }
        matches!(
            (e.class, idem),
            (ErrorClass::Throttled, _) | (ErrorClass::Transient, Idempotence::Safe)
        )
    }

    /// The wait after the failure of `attempt`: `Retry-After` if given (bounded), else
    /// a uniformly drawn part of the exponential backoff.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(ra) = retry_after {
            return ra.min(self.max_retry_after);
        }
        let exp = self
            .base
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.max_backoff);
        let f = OsRandom.fraction("ibm-retry").unwrap_or(0.5);
        exp.mul_f64(f.clamp(0.0, 1.0))
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by IBM).
pub fn retry_after(header: Option<&str>) -> Option<Duration> {
    header?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(class: ErrorClass) -> AwsError {
        AwsError::new(class, "get_secret", "x", "y")
    }

    #[test]
    fn creates_are_repeated_only_after_a_throttle() {
        let p = RetryPolicy::default();
        assert!(p.should_retry(&err(ErrorClass::Throttled), 1, Idempotence::Create));
        assert!(!p.should_retry(&err(ErrorClass::Transient), 1, Idempotence::Create));
        assert!(p.should_retry(&err(ErrorClass::Transient), 4, Idempotence::Safe));
        assert!(!p.should_retry(&err(ErrorClass::Transient), 5, Idempotence::Safe));
        assert!(!p.should_retry(&err(ErrorClass::NotFound), 1, Idempotence::Safe));
    }

    #[test]
    fn retry_after_is_honoured_but_bounded_and_backoff_grows() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3600))),
            p.max_retry_after
        );
        for attempt in 1..10 {
            assert!(p.delay(attempt, None) <= p.max_backoff);
        }
        assert!(p.delay(1, None) <= p.base);
        assert_eq!(retry_after(Some(" 3 ")), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
    }
}
