//! Failure injection around any port, kept apart from the fakes (as mountpoint-s3 keeps
//! its failure-injecting client apart from its mock client): [`Faulty`] wraps a secret
//! store, a deployer, an IAM API or a lease table — a fake, or a real adapter — and
//! consults a shared [`FaultPlan`] before every call.
//!
//! A plan holds, per operation, a queue of what the next calls meet: `None` lets a call
//! through, `Some(fault)` injects one [`Fault`]. Operation names are AWS's
//! (`GetSecretValue`, `PutSecretValue`, `UpdateSecretVersionStage`, `TagResource`,
//! `DescribeSecret`, `ListSecretVersionIds`, `DescribeServices`, `UpdateService`,
//! `ListAccessKeys`, `CreateAccessKey`, `UpdateAccessKey`, `DeleteAccessKey`,
//! `GetCallerIdentity`, `UpdateItem`, `GetItem`); a queue named `op:qualifier` is
//! consulted first for calls that have one: the staging label of a GetSecretValue
//! (`GetSecretValue:AWSPREVIOUS`), the lease operation of an UpdateItem
//! (`UpdateItem:acquire`, `:renew`, `:release`).
//!
//! A plan can also kill the "process": after so many successful writes, or at the write
//! attempt after so many, every call fails with [`crash`] until [`FaultPlan::restart`].
//! Writes are the calls that change something (PutSecretValue, UpdateSecretVersionStage,
//! TagResource, UpdateService, the IAM key changes, lease writes). Give the store and ECS
//! one plan each to count their writes apart, or one plan to crash both at once.

use crate::errors::{crash, timeout};
use crate::lock;
use futures::future::BoxFuture;
use rotator_core::error::AwsError;
use rotator_core::ids::{Account, ClusterName, SecretRef, ServiceName, ServiceRef, VersionId};
use rotator_core::rotation::deploy::{Deployer, Described, Forced};
use rotator_core::rotation::lease::{
    AcquireOutcome, AcquireRequest, LeaseError, LeaseRecord, LeaseStore,
};
use rotator_core::rotation::store::{Found, SecretMeta, SecretStore, Select, VersionInfo};
use rotator_core::rotation::target::{AccessKeyInfo, IamApi, NewAccessKey};
use secrecy::SecretString;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// What one call meets.
#[derive(Clone, Debug)]
pub enum Fault {
    /// The call fails with this error before it reaches the port: nothing changes
    /// (throttling, access denied, a 5xx refused at the front door).
    Fail(AwsError),
    /// The call reaches the port and takes effect, but the caller gets this error: a
    /// response lost on the way back, a timeout after the write was applied. (If the port
    /// itself fails, the caller gets that failure.)
    FailAfter(AwsError),
    /// The call waits this long, then fails as timed out without reaching the port.
    Timeout(Duration),
    /// The call never answers (only a deadline around it ends it).
    Hang,
    /// The task making the call panics.
    Panic,
}

impl Fault {
    /// A timeout after the request took effect: the caller cannot tell that it did.
    pub fn timeout_after_write(operation: &'static str) -> Self {
        Fault::FailAfter(timeout(operation))
    }

    fn reaches_port(&self) -> bool {
        matches!(self, Fault::FailAfter(_))
    }

    fn label(&self) -> String {
        match self {
            Fault::Fail(e) => e.code().unwrap_or("error").to_owned(),
            Fault::FailAfter(e) => format!("{} after the call", e.code().unwrap_or("error")),
            Fault::Timeout(d) => format!("Timeout after {d:?}"),
            Fault::Hang => "hang".into(),
            Fault::Panic => "panic".into(),
        }
    }
}

/// One fault the plan injected.
#[derive(Clone, Debug)]
pub struct Injected {
    pub at: Instant,
    pub op: &'static str,
    /// The error code, or `Timeout after ..`, `hang`, `panic`, `... after the call`.
    pub what: String,
}

#[derive(Default)]
struct PlanState {
    queues: HashMap<String, VecDeque<Option<Fault>>>,
    /// Every call fails once this many writes (in total) have succeeded.
    crash_after_writes: Option<usize>,
    /// The write attempt after this many (in total) and every call after it fail.
    crash_on_write: Option<usize>,
    writes_ok: usize,
    write_attempts: usize,
    /// Set when a `crash_on_write` fired: the process stays dead until `restart`.
    crashed: bool,
    injected: Vec<Injected>,
}

impl PlanState {
    fn pop(&mut self, key: &str) -> Option<Option<Fault>> {
        self.queues.get_mut(key).and_then(|q| q.pop_front())
    }

    fn dead(&self) -> bool {
        self.crashed || self.crash_after_writes.is_some_and(|n| self.writes_ok >= n)
    }
}

/// The faults of one or more [`Faulty`] wrappers; clones share the plan.
#[derive(Clone, Default)]
pub struct FaultPlan(Arc<Mutex<PlanState>>);

impl FaultPlan {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next calls of `op` meet these faults, in order (after any already queued).
    pub fn inject(&self, op: &str, faults: impl IntoIterator<Item = Fault>) {
        self.inject_after(op, 0, faults);
    }

    /// After `skip` more calls of `op` pass, the following ones meet `faults`.
    pub fn inject_after(&self, op: &str, skip: usize, faults: impl IntoIterator<Item = Fault>) {
        let mut st = lock(&self.0);
        let q = st.queues.entry(op.to_owned()).or_default();
        q.extend(std::iter::repeat_n(None, skip));
        q.extend(faults.into_iter().map(Some));
    }

    /// The next calls of `op` fail with these errors, in order, without reaching the port.
    pub fn fail_next(&self, op: &str, errors: impl IntoIterator<Item = AwsError>) {
        self.inject(op, errors.into_iter().map(Fault::Fail));
    }

    /// After `skip` more calls of `op` pass, the following ones fail with `errors`.
    pub fn fail_after(&self, op: &str, skip: usize, errors: impl IntoIterator<Item = AwsError>) {
        self.inject_after(op, skip, errors.into_iter().map(Fault::Fail));
    }

    /// The next GetSecretValue calls that name `stage` fail with these errors, in order
    /// (reads of other stages are not affected).
    pub fn fail_next_read(&self, stage: &str, errors: impl IntoIterator<Item = AwsError>) {
        self.fail_next(&format!("GetSecretValue:{stage}"), errors);
    }

    /// The process dies after `n` more successful writes: from then on every call fails
    /// with class `Other`, code `Crash`, until [`Self::restart`].
    pub fn crash_after_writes(&self, n: usize) {
        let mut st = lock(&self.0);
        st.crash_after_writes = Some(st.writes_ok + n);
    }

    /// The process dies at a write: the next `n` write attempts go through, the one after
    /// them fails with `Crash`, and so does every call after it, until [`Self::restart`].
    /// (Concurrent writes claim their place before they run, so at most `n` get through.)
    pub fn crash_on_write(&self, n: usize) {
        let mut st = lock(&self.0);
        st.crash_on_write = Some(st.write_attempts + n);
    }

    /// A new process: calls work again, queued faults are dropped (the stored state of
    /// the wrapped ports is whatever the old process left).
    pub fn restart(&self) {
        let mut st = lock(&self.0);
        st.crash_after_writes = None;
        st.crash_on_write = None;
        st.crashed = false;
        st.queues.clear();
    }

    /// Every fault injected so far, in order.
    pub fn injected(&self) -> Vec<Injected> {
        lock(&self.0).injected.clone()
    }

    /// Writes that went through the wrappers of this plan and succeeded.
    pub fn writes_ok(&self) -> usize {
        lock(&self.0).writes_ok
    }

    /// What the next call of `op` meets (`None`: it goes through). A call that reaches
    /// the port and writes claims its place for `crash_on_write` here.
    fn decide(&self, op: &'static str, qualifier: Option<&str>, write: bool) -> Option<Fault> {
        let mut st = lock(&self.0);
        let st = &mut *st;
        let fault = if st.dead() {
            Some(Fault::Fail(crash(op)))
        } else {
            let queued = match qualifier.and_then(|q| st.pop(&format!("{op}:{q}"))) {
                Some(slot) => slot,
                None => st.pop(op).flatten(),
            };
            let reaches = queued.as_ref().is_none_or(Fault::reaches_port);
            if write && reaches && st.crash_on_write.is_some_and(|n| st.write_attempts >= n) {
                st.crashed = true;
                Some(Fault::Fail(crash(op)))
            } else {
                if write && reaches {
                    st.write_attempts += 1;
                }
                queued
            }
        };
        if let Some(f) = &fault {
            st.injected.push(Injected {
                at: Instant::now(),
                op,
                what: f.label(),
            });
        }
        fault
    }

    fn wrote(&self, ok: bool) {
        if ok {
            lock(&self.0).writes_ok += 1;
        }
    }
}

/// A port whose calls first meet the faults of a [`FaultPlan`].
#[derive(Clone)]
pub struct Faulty<P> {
    inner: P,
    plan: FaultPlan,
}

impl<P> Faulty<P> {
    /// Wraps `inner`; its calls consult `plan` (shared with whoever holds a clone).
    pub fn new(inner: P, plan: &FaultPlan) -> Self {
        Self {
            inner,
            plan: plan.clone(),
        }
    }

    pub fn inner(&self) -> &P {
        &self.inner
    }

    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// One call: the plan's verdict, then the port (or not).
    async fn run<T, E, Fut>(
        &self,
        op: &'static str,
        qualifier: Option<&str>,
        write: bool,
        call: impl FnOnce() -> Fut,
        wrap: fn(AwsError) -> E,
    ) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        match self.plan.decide(op, qualifier, write) {
            None => {
                let r = call().await;
                if write {
                    self.plan.wrote(r.is_ok());
                }
                r
            }
            Some(Fault::Fail(e)) => Err(wrap(e)),
            Some(Fault::FailAfter(e)) => {
                let r = call().await;
                if write {
                    self.plan.wrote(r.is_ok());
                }
                r.and(Err(wrap(e)))
            }
            Some(Fault::Timeout(d)) => {
                tokio::time::sleep(d).await;
                Err(wrap(timeout(op)))
            }
            Some(Fault::Hang) => futures::future::pending().await,
            Some(Fault::Panic) => panic!("injected panic in {op}"),
        }
    }
}

fn same(e: AwsError) -> AwsError {
    e
}

impl<S: SecretStore> SecretStore for Faulty<S> {
    async fn describe(&self, s: &SecretRef) -> Result<SecretMeta, AwsError> {
        self.run(
            "DescribeSecret",
            None,
            false,
            || self.inner.describe(s),
            same,
        )
        .await
    }

    /// One DescribeSecret per ref, each meeting the plan (a fault hits one entry).
    async fn describe_many(&self, refs: &[SecretRef], found: Found<'_>) {
        for (i, r) in refs.iter().enumerate() {
            found(i, self.describe(r).await);
        }
    }

    async fn versions(&self, s: &SecretRef) -> Result<Vec<VersionInfo>, AwsError> {
        self.run(
            "ListSecretVersionIds",
            None,
            false,
            || self.inner.versions(s),
            same,
        )
        .await
    }

    async fn get_value(
        &self,
        s: &SecretRef,
        select: Select<'_>,
    ) -> Result<(VersionId, SecretString), AwsError> {
        let stage = match &select {
            Select::Stage(st) | Select::Version(_, st) => *st,
        };
        self.run(
            "GetSecretValue",
            Some(stage),
            false,
            || self.inner.get_value(s, select),
            same,
        )
        .await
    }

    async fn put_pending(
        &self,
        s: &SecretRef,
        token: &VersionId,
        value: &SecretString,
    ) -> Result<VersionId, AwsError> {
        self.run(
            "PutSecretValue",
            None,
            true,
            || self.inner.put_pending(s, token, value),
            same,
        )
        .await
    }

    async fn update_stage(
        &self,
        s: &SecretRef,
        stage: &str,
        to: Option<&VersionId>,
        from: Option<&VersionId>,
    ) -> Result<(), AwsError> {
        self.run(
            "UpdateSecretVersionStage",
            None,
            true,
            || self.inner.update_stage(s, stage, to, from),
            same,
        )
        .await
    }

    async fn tag(&self, s: &SecretRef, tags: &[(&str, String)]) -> Result<(), AwsError> {
        self.run("TagResource", None, true, || self.inner.tag(s, tags), same)
            .await
    }
}

impl<D: Deployer> Deployer for Faulty<D> {
    async fn describe(
        &self,
        account: &Account,
        cluster: &ClusterName,
        services: &[ServiceName],
    ) -> Result<Vec<Described>, AwsError> {
        self.run(
            "DescribeServices",
            None,
            false,
            || self.inner.describe(account, cluster, services),
            same,
        )
        .await
    }

    async fn force_deploy(
        &self,
        account: &Account,
        service: &ServiceRef,
    ) -> Result<Forced, AwsError> {
        self.run(
            "UpdateService",
            None,
            true,
            || self.inner.force_deploy(account, service),
            same,
        )
        .await
    }
}

impl<I: IamApi> IamApi for Faulty<I> {
    fn list_keys<'a>(
        &'a self,
        account: &'a Account,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Vec<AccessKeyInfo>, AwsError>> {
        Box::pin(self.run(
            "ListAccessKeys",
            None,
            false,
            move || self.inner.list_keys(account, user),
            same,
        ))
    }

    fn create_key<'a>(
        &'a self,
        account: &'a Account,
        user: &'a str,
    ) -> BoxFuture<'a, Result<NewAccessKey, AwsError>> {
        Box::pin(self.run(
            "CreateAccessKey",
            None,
            true,
            move || self.inner.create_key(account, user),
            same,
        ))
    }

    fn set_active<'a>(
        &'a self,
        account: &'a Account,
        user: &'a str,
        key_id: &'a str,
        active: bool,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(self.run(
            "UpdateAccessKey",
            None,
            true,
            move || self.inner.set_active(account, user, key_id, active),
            same,
        ))
    }

    fn delete_key<'a>(
        &'a self,
        account: &'a Account,
        user: &'a str,
        key_id: &'a str,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(self.run(
            "DeleteAccessKey",
            None,
            true,
            move || self.inner.delete_key(account, user, key_id),
            same,
        ))
    }

    fn caller_arn<'a>(
        &'a self,
        account: &'a Account,
        key_id: &'a str,
        secret: &'a SecretString,
    ) -> BoxFuture<'a, Result<String, AwsError>> {
        Box::pin(self.run(
            "GetCallerIdentity",
            None,
            false,
            move || self.inner.caller_arn(account, key_id, secret),
            same,
        ))
    }
}

impl<L: LeaseStore> LeaseStore for Faulty<L> {
    fn acquire<'a>(
        &'a self,
        req: &'a AcquireRequest,
    ) -> BoxFuture<'a, Result<AcquireOutcome, LeaseError>> {
        Box::pin(self.run(
            "UpdateItem",
            Some("acquire"),
            true,
            move || self.inner.acquire(req),
            LeaseError::Store,
        ))
    }

    fn renew<'a>(
        &'a self,
        lease: &'a LeaseRecord,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> BoxFuture<'a, Result<(), LeaseError>> {
        Box::pin(self.run(
            "UpdateItem",
            Some("renew"),
            true,
            move || self.inner.renew(lease, expires_at),
            LeaseError::Store,
        ))
    }

    fn release<'a>(&'a self, lease: &'a LeaseRecord) -> BoxFuture<'a, Result<(), LeaseError>> {
        Box::pin(self.run(
            "UpdateItem",
            Some("release"),
            true,
            move || self.inner.release(lease),
            LeaseError::Store,
        ))
    }

    fn verify<'a>(&'a self, lease: &'a LeaseRecord) -> BoxFuture<'a, Result<(), LeaseError>> {
        Box::pin(self.run(
            "GetItem",
            None,
            false,
            move || self.inner.verify(lease),
            LeaseError::Store,
        ))
    }
}

#[cfg(test)]
mod tests;
