//! The one source of wall-clock time. Timers use tokio time; anything that compares
//! against dates stored in AWS asks a `Clock`, so tests can move it.

use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to, or together with tokio's (paused) time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    inner: Arc<Mutex<(DateTime<Utc>, tokio::time::Instant)>>,
}

impl ManualClock {
    /// Starts at `at`, and from then on follows tokio's clock (which tests pause and advance).
    pub fn new(at: DateTime<Utc>) -> Self {
        Self {
            inner: Arc::new(Mutex::new((at, tokio::time::Instant::now()))),
        }
    }

    pub fn set(&self, at: DateTime<Utc>) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *g = (at, tokio::time::Instant::now());
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = tokio::time::Instant::now().saturating_duration_since(g.1);
        g.0 + chrono::Duration::from_std(elapsed).unwrap_or_default()
    }
}
