//! Per-secret leases: mutual exclusion between replicas (docs/ha.md).
//!
//! The standard lock-table pattern on a store with conditional writes (DynamoDB):
//! - **acquire** writes `owner`, `expires_at = now + ttl` and `version + 1`, only if the
//!   record is absent, expired (by the *acquirer's* clock minus a skew allowance), or ours;
//! - **renew** (every ttl/3, in the background) moves `expires_at`, only if owner and
//!   version are still ours; a failed condition means another replica took it: lost;
//! - **release** marks the record expired, on the same condition. Records are not deleted,
//!   so a secret's version (the fencing token) only ever goes up.
//!
//! The holder's own view is kept on its *monotonic* clock: the lease is valid until
//! `sent + ttl - margin` after the last successful write (`sent` being when that request
//! left, so network time counts against us), and the wall clock must agree too (a
//! suspended machine's monotonic clock stands still while the others' wall clocks move).
//! Another replica takes over only once `expires_at < its now - margin`; both sides
//! together tolerate clocks `2 × margin` apart (margin = ttl/4: 30 s at the default 60 s).
//! A lapsed lease is never resumed: the holder stops and the next taker starts over.
//!
//! Write steps check the lease through [`fence`] before they run (locally, then the
//! record's owner and version with a consistent read) and are abandoned when it lapses.

pub mod fence;
pub mod memory;

use crate::clock::Clock;
use crate::error::AwsError;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// One lease record as the store holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    pub key: String,
    pub owner: String,
    /// Goes up by one on every acquire: the fencing token.
    pub version: u64,
    /// The expiry the holder wrote, on the holder's clock.
    pub expires_at: DateTime<Utc>,
}

/// An acquire request. Times come from the caller's [`Clock`].
#[derive(Clone, Debug)]
pub struct AcquireRequest {
    pub key: String,
    pub owner: String,
    pub expires_at: DateTime<Utc>,
    /// A record whose expiry is before this counts as free (now minus the skew allowance).
    pub cutoff: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcquireOutcome {
    Acquired(LeaseRecord),
    /// Someone else holds it; the record when the store says whose it is.
    Held(Option<LeaseRecord>),
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum LeaseError {
    /// The record is no longer ours (another replica took it, or it was released).
    #[error("lease on {key} lost: {why}")]
    Lost { key: String, why: String },
    /// The lease table could not be reached or refused the call.
    #[error("lease table: {0}")]
    Store(#[from] AwsError),
    /// The record exists but is not shaped like a lease.
    #[error("lease table: the record for {key} is malformed: {why}")]
    Malformed { key: String, why: String },
}

/// What the leases need from a store with conditional writes (DynamoDB; an in-memory
/// one in tests). Boxed futures: held as `Arc<dyn LeaseStore>`, called a few times per
/// rotation.
pub trait LeaseStore: Send + Sync + 'static {
    /// Takes the lease if the record is absent, expired before `req.cutoff`, or already
    /// `req.owner`'s; the version goes up by one.
    fn acquire<'a>(
        &'a self,
        req: &'a AcquireRequest,
    ) -> BoxFuture<'a, Result<AcquireOutcome, LeaseError>>;

    /// Moves the expiry, only if owner and version still match (else `Lost`).
    fn renew<'a>(
        &'a self,
        lease: &'a LeaseRecord,
        expires_at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), LeaseError>>;

    /// Marks the record expired, only if owner and version still match (else `Lost`).
    fn release<'a>(&'a self, lease: &'a LeaseRecord) -> BoxFuture<'a, Result<(), LeaseError>>;

    /// A consistent read: `Ok` only if the record still names this owner and version.
    fn verify<'a>(&'a self, lease: &'a LeaseRecord) -> BoxFuture<'a, Result<(), LeaseError>>;
}

/// The lease protocol for one replica: who we are, how long a lease lives, whose clock.
#[derive(Clone)]
pub struct Leases {
    store: Arc<dyn LeaseStore>,
    owner: String,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    renew: bool,
}

/// The result of [`Leases::acquire`].
pub enum Taken {
    Ours(LeaseGuard),
    /// Another replica holds it (its owner id, when known).
    Busy {
        holder: Option<String>,
    },
}

impl Leases {
    pub fn new(
        store: Arc<dyn LeaseStore>,
        owner: impl Into<String>,
        ttl: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            owner: owner.into(),
            ttl,
            clock,
            renew: true,
        }
    }

    /// No background renewal: guards live exactly one ttl (tests drive [`LeaseGuard::renew`]).
    pub fn without_renewal(mut self) -> Self {
        self.renew = false;
        self
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How much earlier than the record's expiry the holder stops, and how much later than
    /// it another replica takes over: a quarter of the ttl on each side.
    pub fn margin(&self) -> Duration {
        self.ttl / 4
    }

    /// Takes the lease on `key`, or says who holds it.
    pub async fn acquire(&self, key: &str) -> Result<Taken, LeaseError> {
        let sent = Instant::now();
        let now = self.clock.now();
        let req = AcquireRequest {
            key: key.to_owned(),
            owner: self.owner.clone(),
            expires_at: now + chrono_dur(self.ttl),
            cutoff: now - chrono_dur(self.margin()),
        };
        let record = match self.store.acquire(&req).await? {
            AcquireOutcome::Acquired(r) => r,
            AcquireOutcome::Held(r) => {
                return Ok(Taken::Busy {
                    holder: r.map(|r| r.owner),
                })
            }
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                record,
                valid_until: sent + self.ttl - self.margin(),
                wall_until: now + chrono_dur(self.ttl - self.margin()),
                lost: None,
            }),
            changed: Notify::new(),
            leases: self.clone(),
        });
        let renewer = self
            .renew
            .then(|| tokio::spawn(renew_loop(Arc::downgrade(&shared))));
        Ok(Taken::Ours(LeaseGuard {
            shared,
            renewer,
            released: false,
        }))
    }
}

fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

struct State {
    record: LeaseRecord,
    /// Monotonic end of validity (from when the last successful write was sent).
    valid_until: Instant,
    /// The same on the wall clock.
    wall_until: DateTime<Utc>,
    /// Why the lease is gone; sticky.
    lost: Option<String>,
}

struct Shared {
    state: Mutex<State>,
    /// Woken when the lease is lost or its validity moves.
    changed: Notify,
    leases: Leases,
}

impl Shared {
    fn st(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Err(why)` once the lease is lost or has lapsed (and from then on).
    fn check(&self) -> Result<(), String> {
        let mut st = self.st();
        if let Some(why) = &st.lost {
            return Err(why.clone());
        }
        let lapsed = if Instant::now() >= st.valid_until {
            Some("not renewed in time (expired on this replica's clock)")
        } else if self.leases.clock.now() >= st.wall_until {
            Some("expired on this replica's wall clock (suspended, or the clock jumped)")
        } else {
            None
        };
        if let Some(why) = lapsed {
            st.lost = Some(why.to_owned());
            drop(st);
            self.changed.notify_waiters();
            return Err(why.to_owned());
        }
        Ok(())
    }

    fn lose(&self, why: String) {
        let mut st = self.st();
        if st.lost.is_none() {
            st.lost = Some(why);
        }
        drop(st);
        self.changed.notify_waiters();
    }

    /// One renewal: extends validity from when the request was sent.
    async fn renew(&self) -> Result<(), LeaseError> {
        self.check().map_err(|why| self.lost_error(why))?;
        let l = &self.leases;
        let sent = Instant::now();
        let now = l.clock.now();
        let expires = now + chrono_dur(l.ttl);
        let record = self.st().record.clone();
        match l.store.renew(&record, expires).await {
            Ok(()) => {
                let mut st = self.st();
                if st.lost.is_none() {
                    st.record.expires_at = expires;
                    st.valid_until = st.valid_until.max(sent + l.ttl - l.margin());
                    st.wall_until = now + chrono_dur(l.ttl - l.margin());
                }
                drop(st);
                self.changed.notify_waiters();
                Ok(())
            }
            Err(e @ LeaseError::Lost { .. }) => {
                self.lose(format!("taken over by another replica ({e})"));
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    fn lost_error(&self, why: String) -> LeaseError {
        LeaseError::Lost {
            key: self.st().record.key.clone(),
            why,
        }
    }
}

/// Renews every ttl/3 until the lease is lost, released or dropped. A failed renewal is
/// retried at the next tick; the lease lapses on its own if none succeeds in time.
async fn renew_loop(shared: std::sync::Weak<Shared>) {
    let every = match shared.upgrade() {
        Some(s) => s.leases.ttl / 3,
        None => return,
    };
    loop {
        tokio::time::sleep(every).await;
        let Some(s) = shared.upgrade() else { return };
        if s.check().is_err() {
            return;
        }
        match tokio::time::timeout(every, s.renew()).await {
            Ok(Ok(())) => {}
            Ok(Err(LeaseError::Lost { key, why })) => {
                tracing::warn!(lease = %key, %why, "lease lost; the rotation stops before its next write");
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(lease = %s.st().record.key, error = %e, "cannot renew the lease; retrying");
            }
            Err(_) => {
                tracing::warn!(lease = %s.st().record.key, "renewing the lease timed out; retrying");
            }
        }
    }
}

/// A held lease. Renewed in the background; released with [`LeaseGuard::release`] (a
/// dropped guard is released in the background, best effort, else it expires).
pub struct LeaseGuard {
    shared: Arc<Shared>,
    renewer: Option<tokio::task::JoinHandle<()>>,
    released: bool,
}

impl LeaseGuard {
    /// The handle write steps check (see [`fence`]).
    pub fn fence(&self) -> Fence {
        Fence(self.shared.clone())
    }

    pub fn record(&self) -> LeaseRecord {
        self.shared.st().record.clone()
    }

    /// Renews now (the background task does this every ttl/3).
    pub async fn renew(&self) -> Result<(), LeaseError> {
        self.shared.renew().await
    }

    /// Gives the lease back so another replica need not wait for it to expire.
    pub async fn release(mut self) -> Result<(), LeaseError> {
        self.released = true;
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        let record = self.record();
        self.shared.lose("released".into());
        self.shared.leases.store.release(&record).await
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        if self.released {
            return;
        }
        let record = self.record();
        self.shared.lose("dropped".into());
        // Best effort (e.g. a rotation stopped at the end of the shutdown grace): otherwise
        // the record simply expires.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let store = self.shared.leases.store.clone();
            rt.spawn(async move {
                let _ = store.release(&record).await;
            });
        }
    }
}

/// What write steps check: a shared view of one held lease.
#[derive(Clone)]
pub struct Fence(Arc<Shared>);

impl Fence {
    /// The local check only: not lost, not lapsed on either clock.
    pub fn check_local(&self) -> Result<(), String> {
        self.0.check()
    }

    /// The full check before a write: local, then the record itself (owner and version,
    /// consistent read), then local again (the read took time).
    pub async fn verify(&self) -> Result<(), String> {
        self.0.check()?;
        let record = self.0.st().record.clone();
        match self.0.leases.store.verify(&record).await {
            Ok(()) => {}
            Err(e @ LeaseError::Lost { .. }) => {
                let why = format!("taken over by another replica ({e})");
                self.0.lose(why.clone());
                return Err(why);
            }
            // Not knowing is not holding: no write without a confirmed lease.
            Err(e) => return Err(format!("cannot confirm the lease ({e})")),
        }
        self.0.check()
    }

    /// Completes (with the reason) when the lease is lost or lapses.
    pub async fn lost(&self) -> String {
        loop {
            let notified = self.0.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Err(why) = self.0.check() {
                return why;
            }
            let until = self.0.st().valid_until;
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(until) => {}
            }
        }
    }

    pub fn record(&self) -> LeaseRecord {
        self.0.st().record.clone()
    }
}

/// Who this replica is in the lease table: host, process and a random part (a restarted
/// process is a new owner and waits for its predecessor's lease to expire).
pub fn owner_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into());
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    format!(
        "{host}/{}/{:08x}",
        std::process::id(),
        u32::from_le_bytes(b)
    )
}

#[cfg(test)]
mod tests;
