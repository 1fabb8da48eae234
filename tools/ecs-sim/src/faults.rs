//! Fault injection: throttling, server errors and added latency.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::EcsError;
use crate::rng::Rng;

/// Keeps a typo from parking every call for hours.
const MAX_LATENCY_MS: u64 = 60_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultConfig {
    pub throttle_rate: f64,
    pub error_rate: f64,
    pub latency_ms: u64,
}

/// A partial change, as `POST /_sim/faults` takes it.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultUpdate {
    pub throttle_rate: Option<f64>,
    pub error_rate: Option<f64>,
    pub latency_ms: Option<u64>,
}

/// What to do to one API call.
#[derive(Debug)]
pub struct Verdict {
    pub delay: Duration,
    pub error: Option<EcsError>,
}

#[derive(Debug)]
pub struct Faults {
    config: FaultConfig,
    rng: Rng,
}

impl Faults {
    pub fn new(config: FaultConfig, seed: u64) -> Result<Self, String> {
        let mut faults = Self {
            config: FaultConfig::default(),
            rng: Rng::new(seed),
        };
        faults.update(FaultUpdate {
            throttle_rate: Some(config.throttle_rate),
            error_rate: Some(config.error_rate),
            latency_ms: Some(config.latency_ms),
        })?;
        Ok(faults)
    }

    pub fn config(&self) -> FaultConfig {
        self.config
    }

    /// Applies a change, all or nothing.
    pub fn update(&mut self, update: FaultUpdate) -> Result<(), String> {
        let mut next = self.config;
        if let Some(rate) = update.throttle_rate {
            next.throttle_rate = check_rate("throttleRate", rate)?;
        }
        if let Some(rate) = update.error_rate {
            next.error_rate = check_rate("errorRate", rate)?;
        }
        if let Some(ms) = update.latency_ms {
            if ms > MAX_LATENCY_MS {
                return Err(format!("latencyMs must be at most {MAX_LATENCY_MS}"));
            }
            next.latency_ms = ms;
        }
        self.config = next;
        Ok(())
    }

    /// Decides the fate of one call. Throttling is checked first, as AWS
    /// throttles before a request reaches the service.
    pub fn judge(&mut self) -> Verdict {
        let error = if self.rng.chance(self.config.throttle_rate) {
            Some(EcsError::throttling())
        } else if self.rng.chance(self.config.error_rate) {
            Some(EcsError::server(
                "Service unavailable (injected by ecs-sim).",
            ))
        } else {
            None
        };
        Verdict {
            delay: Duration::from_millis(self.config.latency_ms),
            error,
        }
    }
}

fn check_rate(what: &str, rate: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{what} must be between 0 and 1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_validated_atomically() {
        let mut f = Faults::new(FaultConfig::default(), 1).unwrap();
        let bad = FaultUpdate {
            throttle_rate: Some(0.5),
            error_rate: Some(1.5),
            latency_ms: None,
        };
        assert!(f.update(bad).is_err());
        assert_eq!(f.config(), FaultConfig::default());
        assert!(Faults::new(
            FaultConfig {
                throttle_rate: f64::NAN,
                ..FaultConfig::default()
            },
            1
        )
        .is_err());
    }

    #[test]
    fn full_rates_always_fault() {
        let mut f = Faults::new(
            FaultConfig {
                throttle_rate: 1.0,
                ..FaultConfig::default()
            },
            1,
        )
        .unwrap();
        for _ in 0..100 {
            assert_eq!(f.judge().error.unwrap().code, "ThrottlingException");
        }
        f.update(FaultUpdate {
            throttle_rate: Some(0.0),
            error_rate: Some(1.0),
            latency_ms: None,
        })
        .unwrap();
        assert_eq!(f.judge().error.unwrap().status, 500);
        f.update(FaultUpdate {
            error_rate: Some(0.0),
            ..FaultUpdate::default()
        })
        .unwrap();
        assert!(f.judge().error.is_none());
    }
}
