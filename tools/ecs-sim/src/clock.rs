//! Simulated time.
//!
//! Simulated seconds advance `scale` times faster than real ones, so a rollout
//! that takes 30 s in the model finishes in 0.3 s of a test at scale 100.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone)]
pub struct SimClock {
    started: Instant,
    started_epoch: f64,
    scale: f64,
}

impl SimClock {
    /// `scale` must be finite and positive; the CLI validates it.
    pub fn new(scale: f64) -> Self {
        let started_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        Self {
            started: Instant::now(),
            started_epoch,
            scale,
        }
    }

    /// Simulated seconds since the simulator started.
    pub fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * self.scale
    }

    /// The timestamp shown in API responses for a simulated instant: the real
    /// wall-clock time at which it happens. Clients compare ECS timestamps with
    /// other services' (a deployment's createdAt against a secret's
    /// LastChangedDate), as against real AWS where every clock is wall time; a
    /// "simulated epoch" running `scale` times fast put deployments in the future.
    pub fn api_epoch(&self, sim: f64) -> f64 {
        self.wall_epoch(sim)
    }

    /// The real wall-clock epoch at which a simulated instant happens,
    /// which benchmarks compare with their own clock.
    pub fn wall_epoch(&self, sim: f64) -> f64 {
        self.started_epoch + sim / self.scale
    }
}
