//! The shared state: the instance, the issued tokens, queued faults and call counts.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::iam::Tokens;
use crate::model::Instance;
use crate::rng::Rng;

/// Which calls a queued fault answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FaultTarget {
    /// Secrets Manager calls (`/api/v2/...`).
    #[default]
    Api,
    /// Token exchanges (`/identity/token`).
    Iam,
    /// Either.
    Any,
}

/// One queued fault: the next matching call is answered with `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub status: u16,
    /// Seconds for `Retry-After` (429 and 503).
    #[serde(default)]
    pub retry_after: Option<u64>,
    #[serde(default)]
    pub target: FaultTarget,
    /// Only calls of this SDK operation (`create_secret`, ...); any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Answer the fault *after* doing the call (the answer is lost, the change is made).
    #[serde(default)]
    pub after: bool,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Counts {
    /// Secrets Manager operations answered (any status), by SDK operation name.
    pub operations: BTreeMap<String, u64>,
    pub iam_exchanges: u64,
    pub iam_refused: u64,
    pub rejected_missing: u64,
    pub rejected_unknown: u64,
    pub rejected_expired: u64,
    pub faults_served: u64,
}

#[derive(Debug)]
pub struct Sim {
    pub instance: Instance,
    pub tokens: Tokens,
    pub api_keys: Vec<String>,
    pub token_ttl: u64,
    pub faults: VecDeque<Fault>,
    pub counts: Counts,
    pub rng: Rng,
}

impl Sim {
    pub fn new(api_keys: Vec<String>, token_ttl: u64, seed: u64, now: DateTime<Utc>) -> Self {
        Self {
            instance: Instance::new(Rng::new(seed), now),
            tokens: Tokens::default(),
            api_keys,
            token_ttl,
            faults: VecDeque::new(),
            counts: Counts::default(),
            rng: Rng::new(crate::rng::mix(seed ^ 0x7a7a)),
        }
    }

    /// Takes the next queued fault if it applies to `target` and operation `op`.
    pub fn take_fault(&mut self, target: FaultTarget, op: &str) -> Option<Fault> {
        let f = self.faults.front()?;
        let op_matches = f.operation.as_deref().is_none_or(|o| o == op);
        if (f.target == FaultTarget::Any || f.target == target) && op_matches {
            self.counts.faults_served += 1;
            return self.faults.pop_front();
        }
        None
    }

    pub fn count(&mut self, op: &str) {
        *self.counts.operations.entry(op.to_owned()).or_default() += 1;
    }
}

#[derive(Clone)]
pub struct AppState {
    pub sim: Arc<Mutex<Sim>>,
    pub crn_prefix: Arc<str>,
}

impl AppState {
    /// Locks the state, ignoring poisoning: every handler leaves it consistent between
    /// statements.
    pub fn lock(&self) -> MutexGuard<'_, Sim> {
        self.sim.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Form or query pairs, the last of a repeated key winning.
pub fn pairs(s: &str) -> HashMap<String, String> {
    form_urlencoded::parse(s.as_bytes()).into_owned().collect()
}
