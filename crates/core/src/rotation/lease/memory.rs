//! An in-memory [`LeaseStore`] with DynamoDB's conditional-write rules, for tests: the
//! unit and property tests of the protocol, and engine tests with several replicas.
//! An owner can be cut off (a network partition): its calls then fail like a timeout.

use super::{AcquireOutcome, AcquireRequest, LeaseError, LeaseRecord, LeaseStore};
use crate::error::{AwsError, ErrorClass};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Default)]
struct Inner {
    records: HashMap<String, LeaseRecord>,
    cut_off: BTreeSet<String>,
    acquired: Vec<Acquisition>,
}

/// One successful acquire.
#[derive(Clone, Debug)]
pub struct Acquisition {
    pub key: String,
    pub owner: String,
    pub version: u64,
    pub at: tokio::time::Instant,
}

#[derive(Clone, Default)]
pub struct MemoryLeases {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryLeases {
    pub fn new() -> Self {
        Self::default()
    }

    fn st(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cuts `owner` off from the table (`true`) or reconnects it.
    pub fn partition(&self, owner: &str, cut: bool) {
        let mut st = self.st();
        if cut {
            st.cut_off.insert(owner.to_owned());
        } else {
            st.cut_off.remove(owner);
        }
    }

    pub fn record(&self, key: &str) -> Option<LeaseRecord> {
        self.st().records.get(key).cloned()
    }

    /// Every successful acquisition so far, in order.
    pub fn acquisitions(&self) -> Vec<Acquisition> {
        self.st().acquired.clone()
    }

    fn reachable(&self, owner: &str, op: &'static str) -> Result<(), LeaseError> {
        if self.st().cut_off.contains(owner) {
            return Err(LeaseError::Store(AwsError::new(
                ErrorClass::Transient,
                op,
                "Timeout",
                "the request timed out (partitioned)",
            )));
        }
        Ok(())
    }

    fn matching(
        &self,
        lease: &LeaseRecord,
        op: &'static str,
        f: impl FnOnce(&mut LeaseRecord),
    ) -> Result<(), LeaseError> {
        self.reachable(&lease.owner, op)?;
        let mut st = self.st();
        match st.records.get_mut(&lease.key) {
            Some(r) if r.owner == lease.owner && r.version == lease.version => {
                f(r);
                Ok(())
            }
            other => Err(LeaseError::Lost {
                key: lease.key.clone(),
                why: match other {
                    Some(r) => format!("now held by {} (version {})", r.owner, r.version),
                    None => "the record is gone".into(),
                },
            }),
        }
    }
}

impl LeaseStore for MemoryLeases {
    fn acquire<'a>(
        &'a self,
        req: &'a AcquireRequest,
    ) -> BoxFuture<'a, Result<AcquireOutcome, LeaseError>> {
        Box::pin(async move {
            self.reachable(&req.owner, "UpdateItem")?;
            let mut st = self.st();
            let old = st.records.get(&req.key).cloned();
            let free = match &old {
                None => true,
                Some(r) => r.expires_at < req.cutoff || r.owner == req.owner,
            };
            if !free {
                return Ok(AcquireOutcome::Held(old));
            }
            let record = LeaseRecord {
                key: req.key.clone(),
                owner: req.owner.clone(),
                version: old.map_or(0, |r| r.version) + 1,
                expires_at: req.expires_at,
            };
            st.records.insert(req.key.clone(), record.clone());
            st.acquired.push(Acquisition {
                key: req.key.clone(),
                owner: req.owner.clone(),
                version: record.version,
                at: tokio::time::Instant::now(),
            });
            Ok(AcquireOutcome::Acquired(record))
        })
    }

    fn renew<'a>(
        &'a self,
        lease: &'a LeaseRecord,
        expires_at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), LeaseError>> {
        Box::pin(async move { self.matching(lease, "UpdateItem", |r| r.expires_at = expires_at) })
    }

    fn release<'a>(&'a self, lease: &'a LeaseRecord) -> BoxFuture<'a, Result<(), LeaseError>> {
        Box::pin(async move {
            self.matching(lease, "UpdateItem", |r| {
                r.expires_at = DateTime::<Utc>::UNIX_EPOCH;
            })
        })
    }

    fn verify<'a>(&'a self, lease: &'a LeaseRecord) -> BoxFuture<'a, Result<(), LeaseError>> {
        Box::pin(async move { self.matching(lease, "GetItem", |_| {}) })
    }
}
