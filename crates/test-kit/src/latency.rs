//! Calls that take time, around any port: [`Latency`] sleeps (tokio time) before each
//! call reaches the port it wraps, by operation name (`"*"`: every operation without its
//! own). Two handles on one fake with different latencies make a fast and a slow replica
//! of the same AWS account; a bench gives every call a network round trip.
//!
//! `describe_many` stands for paginated ListSecrets (as the adapter does it from ten
//! secrets per account): one `ListSecrets` delay per page of 100 secrets, then the
//! wrapped port's own `describe_many`.

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
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// ListSecrets returns at most this many secrets per page.
pub const LIST_PAGE: usize = 100;

/// A port whose calls take time.
#[derive(Clone)]
pub struct Latency<P> {
    inner: P,
    delays: Arc<HashMap<String, Duration>>,
    /// The delay comes after the wrapped call: the request took effect (or was answered)
    /// at once and the answer is slow to come back, so it tells the state of then.
    late: bool,
    /// Delays paid, shared by clones: a bench computes its ideal time from them.
    paid: Arc<Paid>,
    /// Waits with the OS's sleep (see [`Self::precise`]) instead of a tokio timer.
    precise: bool,
}

/// How many delays a [`Latency`] (and its clones) paid.
#[derive(Debug, Default)]
struct Paid {
    /// Calls of one resource (everything but `describe_many`).
    calls: AtomicU64,
    /// ListSecrets pages of `describe_many`.
    pages: AtomicU64,
}

impl<P> Latency<P> {
    /// No delay yet: add some with [`Self::with`].
    pub fn new(inner: P) -> Self {
        Self {
            inner,
            delays: Arc::default(),
            late: false,
            paid: Arc::default(),
            precise: false,
        }
    }

    /// Waits in real time with the OS's sleep on tokio's blocking pool instead of a tokio
    /// timer, for benches that compare against `calls x delay`: tokio's timer has 1 ms
    /// ticks and rounds every sleep up (twice), so a 5 ms `tokio::time::sleep` lasts about
    /// 6 ms, 20 % more than the delay stands for (a network round trip is not rounded to
    /// ticks). Ignores paused time: not for tests on paused time.
    pub fn precise(mut self) -> Self {
        self.precise = true;
        self
    }

    /// Delays answers instead of requests: each call reaches the wrapped port at once, and
    /// its answer (the state as of the call) arrives after the delay, as a slow response
    /// does.
    pub fn answering_late(mut self) -> Self {
        self.late = true;
        self
    }

    /// Calls of `op` (`"*"`: every operation without its own delay) take `d` more.
    /// Replaces an earlier delay of the same operation.
    pub fn with(mut self, op: &str, d: Duration) -> Self {
        Arc::make_mut(&mut self.delays).insert(op.to_owned(), d);
        self
    }

    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// Calls of one resource made through this wrapper and its clones so far (each
    /// waited its delay; `describe_many` is counted in [`Self::pages`] instead).
    pub fn calls(&self) -> u64 {
        self.paid.calls.load(Ordering::Relaxed)
    }

    /// ListSecrets pages `describe_many` waited for, through this wrapper and its clones.
    pub fn pages(&self) -> u64 {
        self.paid.pages.load(Ordering::Relaxed)
    }

    fn delay(&self, op: &str) -> Duration {
        self.delays
            .get(op)
            .or_else(|| self.delays.get("*"))
            .copied()
            .unwrap_or_default()
    }

    /// The delay of `op` alone, without a call (a bench's floor: the same waits with no
    /// scheduler around them).
    pub async fn pause(&self, op: &str) {
        let d = self.delay(op);
        if d.is_zero() {
            return;
        }
        if self.precise {
            // A panic of the sleeping thread cannot happen; the wait is over either way.
            let _ = tokio::task::spawn_blocking(move || std::thread::sleep(d)).await;
        } else {
            tokio::time::sleep(d).await;
        }
    }

    /// `call` with the delay of `op`, before it or (answering late) after it.
    async fn timed<T>(&self, op: &str, call: impl std::future::Future<Output = T>) -> T {
        self.paid.calls.fetch_add(1, Ordering::Relaxed);
        if self.late {
            let answer = call.await;
            self.pause(op).await;
            answer
        } else {
            self.pause(op).await;
            call.await
        }
    }
}

impl<S: SecretStore> SecretStore for Latency<S> {
    async fn describe(&self, s: &SecretRef) -> Result<SecretMeta, AwsError> {
        self.timed("DescribeSecret", self.inner.describe(s)).await
    }

    /// Page by page: each page of [`LIST_PAGE`] refs takes one `ListSecrets` delay, and
    /// its answers are handed on when its delay is over (before the next page's).
    async fn describe_many(&self, refs: &[SecretRef], found: Found<'_>) {
        for (page, chunk) in refs.chunks(LIST_PAGE).enumerate() {
            let base = page * LIST_PAGE;
            self.paid.pages.fetch_add(1, Ordering::Relaxed);
            if self.late {
                let mut answers = Vec::with_capacity(chunk.len());
                self.inner
                    .describe_many(chunk, &mut |i, r| answers.push((base + i, r)))
                    .await;
                self.pause("ListSecrets").await;
                for (i, r) in answers {
                    found(i, r);
                }
            } else {
                self.pause("ListSecrets").await;
                self.inner
                    .describe_many(chunk, &mut |i, r| found(base + i, r))
                    .await;
            }
        }
    }

    async fn versions(&self, s: &SecretRef) -> Result<Vec<VersionInfo>, AwsError> {
        self.timed("ListSecretVersionIds", self.inner.versions(s))
            .await
    }

    async fn get_value(
        &self,
        s: &SecretRef,
        select: Select<'_>,
    ) -> Result<(VersionId, SecretString), AwsError> {
        self.timed("GetSecretValue", self.inner.get_value(s, select))
            .await
    }

    async fn put_pending(
        &self,
        s: &SecretRef,
        token: &VersionId,
        value: &SecretString,
    ) -> Result<VersionId, AwsError> {
        self.timed("PutSecretValue", self.inner.put_pending(s, token, value))
            .await
    }

    async fn update_stage(
        &self,
        s: &SecretRef,
        stage: &str,
        to: Option<&VersionId>,
        from: Option<&VersionId>,
    ) -> Result<(), AwsError> {
        self.timed(
            "UpdateSecretVersionStage",
            self.inner.update_stage(s, stage, to, from),
        )
        .await
    }

    async fn tag(&self, s: &SecretRef, tags: &[(&str, String)]) -> Result<(), AwsError> {
        self.timed("TagResource", self.inner.tag(s, tags)).await
    }
}

impl<D: Deployer> Deployer for Latency<D> {
    async fn describe(
        &self,
        account: &Account,
        cluster: &ClusterName,
        services: &[ServiceName],
    ) -> Result<Vec<Described>, AwsError> {
        self.timed(
            "DescribeServices",
            self.inner.describe(account, cluster, services),
        )
        .await
    }

    async fn force_deploy(
        &self,
        account: &Account,
        service: &ServiceRef,
    ) -> Result<Forced, AwsError> {
        self.timed("UpdateService", self.inner.force_deploy(account, service))
            .await
    }
}

impl<I: IamApi> IamApi for Latency<I> {
    fn list_keys<'a>(
        &'a self,
        account: &'a Account,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Vec<AccessKeyInfo>, AwsError>> {
        Box::pin(async move {
            self.timed("ListAccessKeys", self.inner.list_keys(account, user))
                .await
        })
    }

    fn create_key<'a>(
        &'a self,
        account: &'a Account,
        user: &'a str,
    ) -> BoxFuture<'a, Result<NewAccessKey, AwsError>> {
        Box::pin(async move {
            self.timed("CreateAccessKey", self.inner.create_key(account, user))
                .await
        })
    }

    fn set_active<'a>(
        &'a self,
        account: &'a Account,
        user: &'a str,
        key_id: &'a str,
        active: bool,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            self.timed(
                "UpdateAccessKey",
                self.inner.set_active(account, user, key_id, active),
            )
            .await
        })
    }

    fn delete_key<'a>(
        &'a self,
        account: &'a Account,
        user: &'a str,
        key_id: &'a str,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            self.timed(
                "DeleteAccessKey",
                self.inner.delete_key(account, user, key_id),
            )
            .await
        })
    }

    fn caller_arn<'a>(
        &'a self,
        account: &'a Account,
        key_id: &'a str,
        secret: &'a SecretString,
    ) -> BoxFuture<'a, Result<String, AwsError>> {
        Box::pin(async move {
            self.timed(
                "GetCallerIdentity",
                self.inner.caller_arn(account, key_id, secret),
            )
            .await
        })
    }
}

impl<L: LeaseStore> LeaseStore for Latency<L> {
    fn acquire<'a>(
        &'a self,
        req: &'a AcquireRequest,
    ) -> BoxFuture<'a, Result<AcquireOutcome, LeaseError>> {
        Box::pin(async move { self.timed("UpdateItem", self.inner.acquire(req)).await })
    }

    fn renew<'a>(
        &'a self,
        lease: &'a LeaseRecord,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> BoxFuture<'a, Result<(), LeaseError>> {
        Box::pin(async move {
            self.timed("UpdateItem", self.inner.renew(lease, expires_at))
                .await
        })
    }

    fn release<'a>(&'a self, lease: &'a LeaseRecord) -> BoxFuture<'a, Result<(), LeaseError>> {
        Box::pin(async move { self.timed("UpdateItem", self.inner.release(lease)).await })
    }

    fn verify<'a>(&'a self, lease: &'a LeaseRecord) -> BoxFuture<'a, Result<(), LeaseError>> {
        Box::pin(async move { self.timed("GetItem", self.inner.verify(lease)).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{at, ManualClock, Sequence};
    use crate::FakeStore;
    use rotator_core::ids::SecretId;
    use rotator_core::rotation::store::{describe_all, AWSCURRENT};
    use tokio::time::Instant;

    fn r(name: &str) -> SecretRef {
        SecretRef {
            id: SecretId::from(name),
            account: Account::default(),
            store: Default::default(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_call_waits_its_operations_delay_or_the_default() {
        let clock = ManualClock::new(at("2026-03-03T02:00:00Z"));
        let store = FakeStore::new(&clock, &Sequence::default());
        store.create_secret("s", "v");
        let fast = Latency::new(store.clone()).with("*", Duration::from_millis(20));
        let slow = fast.clone().with("GetSecretValue", Duration::from_secs(5));

        let t = Instant::now();
        fast.describe(&r("s")).await.unwrap();
        assert_eq!(t.elapsed(), Duration::from_millis(20));
        let t = Instant::now();
        fast.get_value(&r("s"), Select::Stage(AWSCURRENT))
            .await
            .unwrap();
        assert_eq!(
            t.elapsed(),
            Duration::from_millis(20),
            "fast kept its delay"
        );
        let t = Instant::now();
        slow.get_value(&r("s"), Select::Stage(AWSCURRENT))
            .await
            .unwrap();
        assert_eq!(t.elapsed(), Duration::from_secs(5), "replaced, not added");
        let t = Instant::now();
        slow.describe(&r("s")).await.unwrap();
        assert_eq!(t.elapsed(), Duration::from_millis(20));
        // Both handles reached the same store, and count into the same counters.
        assert_eq!(store.op_count("GetSecretValue"), 2);
        assert_eq!((fast.calls(), slow.pages()), (4, 0));
    }

    /// Real time: the OS's sleep, not tokio's timer (which paused time would skip).
    #[tokio::test(start_paused = true)]
    async fn a_precise_wait_lasts_its_delay_in_real_time() {
        let store = FakeStore::new(
            &ManualClock::new(at("2026-03-03T02:00:00Z")),
            &Sequence::default(),
        );
        let l = Latency::new(store)
            .with("*", Duration::from_millis(20))
            .precise();
        let t = std::time::Instant::now();
        l.pause("GetSecretValue").await;
        assert!(
            t.elapsed() >= Duration::from_millis(20),
            "{:?}",
            t.elapsed()
        );
    }

    /// A store holding `s0`..`s249` (three ListSecrets pages), and refs to them.
    fn three_pages() -> (FakeStore, Vec<SecretRef>) {
        let clock = ManualClock::new(at("2026-03-03T02:00:00Z"));
        let store = FakeStore::new(&clock, &Sequence::default());
        let refs: Vec<SecretRef> = (0..250)
            .map(|i| {
                store.create_secret(&format!("s{i}"), "v");
                r(&format!("s{i}"))
            })
            .collect();
        (store, refs)
    }

    #[tokio::test(start_paused = true)]
    async fn describe_many_waits_once_per_list_page() {
        let (store, refs) = three_pages();
        let l = Latency::new(store).with("*", Duration::from_millis(5));
        let t = Instant::now();
        let metas = describe_all(&l, &refs).await;
        assert_eq!(t.elapsed(), Duration::from_millis(15), "three pages of 100");
        assert!(metas.iter().all(Result::is_ok));
        assert_eq!((l.calls(), l.pages()), (0, 3));
    }

    /// Each page's answers are handed on when that page's delay is over, not after the
    /// last page (so a caller schedules the first page's secrets while the rest load).
    #[tokio::test(start_paused = true)]
    async fn describe_many_answers_each_page_when_it_arrives() {
        let (store, refs) = three_pages();
        for late in [false, true] {
            let mut l = Latency::new(store.clone()).with("ListSecrets", Duration::from_secs(10));
            if late {
                l = l.answering_late();
            }
            let t = Instant::now();
            let mut when = vec![Duration::MAX; refs.len()];
            l.describe_many(&refs, &mut |i, m| {
                assert!(m.is_ok());
                when[i] = t.elapsed();
            })
            .await;
            let secs = |i: usize| when[i].as_secs();
            assert_eq!((secs(0), secs(99)), (10, 10), "first page (late: {late})");
            assert_eq!((secs(100), secs(199)), (20, 20), "second page");
            assert_eq!((secs(200), secs(249)), (30, 30), "last page");
        }
    }
}
