//! Injected failures: a random fraction of calls (`--fault-rate`), or the next N calls
//! (`POST /_sim/faults`), answered the way Alibaba Cloud answers when it throttles or
//! fails.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// The API gateway's flow control: `Throttling.User`, HTTP 400.
    Throttle,
    /// KMS's own QPS limit: `Rejected.Throttling`, HTTP 429.
    KmsThrottle,
    /// `InternalFailure`, HTTP 500.
    Error,
    /// `ServiceUnavailable`, HTTP 503.
    Unavailable,
}

impl FaultKind {
    pub fn error(self) -> ApiError {
        match self {
            FaultKind::Throttle => ApiError::new(
                400,
                "Throttling.User",
                "Request was denied due to user flow control.",
            ),
            FaultKind::KmsThrottle => ApiError::new(
                429,
                "Rejected.Throttling",
                "The QPS upper limit is exceeded.",
            ),
            FaultKind::Error => {
                ApiError::new(500, "InternalFailure", "An internal error occurred.")
            }
            FaultKind::Unavailable => ApiError::new(
                503,
                "ServiceUnavailable",
                "The request has failed due to a temporary failure of the server.",
            ),
        }
    }
}

/// `POST /_sim/faults`: the next `count` calls (of `action`, when given) fail with `kind`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queued {
    pub kind: FaultKind,
    pub count: u32,
    #[serde(default)]
    pub action: Option<String>,
}

#[derive(Debug)]
pub struct Faults {
    pub rate: f64,
    pub kind: FaultKind,
    pub queued: Vec<Queued>,
    rng: u64,
}

impl Faults {
    pub fn new(rate: f64, kind: FaultKind, seed: u64) -> Self {
        Self {
            rate,
            kind,
            queued: Vec::new(),
            rng: seed | 1,
        }
    }

    /// The failure for this call of `action`, if one is due.
    pub fn next(&mut self, action: &str) -> Option<ApiError> {
        if let Some(q) = self
            .queued
            .iter_mut()
            .find(|q| q.count > 0 && q.action.as_deref().is_none_or(|a| a == action))
        {
            q.count -= 1;
            let e = q.kind.error();
            self.queued.retain(|q| q.count > 0);
            return Some(e);
        }
        if self.rate > 0.0 && self.uniform() < self.rate {
            return Some(self.kind.error());
        }
        None
    }

    /// xorshift64*: a uniform draw in [0, 1).
    fn uniform(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_faults_hit_the_next_calls_of_their_action_only() {
        let mut f = Faults::new(0.0, FaultKind::Throttle, 7);
        f.queued.push(Queued {
            kind: FaultKind::Error,
            count: 2,
            action: Some("GetSecretValue".into()),
        });
        assert!(f.next("DescribeSecret").is_none());
        assert_eq!(f.next("GetSecretValue").map(|e| e.status), Some(500));
        assert_eq!(f.next("GetSecretValue").map(|e| e.status), Some(500));
        assert!(f.next("GetSecretValue").is_none());
    }

    #[test]
    fn the_rate_is_roughly_kept() {
        let mut f = Faults::new(0.25, FaultKind::Throttle, 42);
        let hits = (0..4000).filter(|_| f.next("X").is_some()).count();
        assert!((800..1200).contains(&hits), "{hits}");
    }
}
