//! The deploy coordinator: every forced deployment and every stability poll of an engine
//! goes through it, whichever rotation asked.
//!
//! - **Coalescing**: requests to force the same service within `coalesce` of the first
//!   share one UpdateService, and every rotation waiting on it gets the same verdict. A
//!   deployment counts for a rotation only if UpdateService was sent after the rotation
//!   asked (its value was AWSCURRENT by then, so every task of the deployment reads it):
//!   that order is known in this process, whatever the clocks, so a request joins a force
//!   not yet sent, never one already sent. A later force of a service still watched
//!   supersedes the earlier deployment: its waiters move to the new one, whose tasks start
//!   later still.
//! - **Batched polling**: one poller per account and cluster; a round is one
//!   DescribeServices per ten services due, the last call filled up with services not due
//!   yet (more news at no extra call).
//! - **Pacing**: each watched deployment keeps the CLI waiter's schedule ([`Pace`]).
//!
//! Forces run under the lease of a rotation that asked ([`fence`]): the first whose lease
//! still holds.

use super::deploy::DESCRIBE_BATCH;
use super::deploy::{judge, names_deployment, Deployer, Described, Forced, Judgement};
use super::lease::{fence, Fence};
use super::wait::VISIBILITY_GRACE;
use super::wait::{imminent, relevant_events, Pace, Seen, ServiceVerdict, STALLED_EVENTS};
use crate::error::{AwsError, ErrorClass};
use crate::ids::{Account, ClusterName, DeploymentId, ServiceName, ServiceRef};
use crate::telemetry::Telemetry;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

/// `[daemon] redeploy_coalesce` by default: rotations of one service that reach their
/// redeploy within this of each other (secrets due together) share one deployment.
pub const DEFAULT_COALESCE: Duration = Duration::from_secs(3);
/// A DescribeServices unanswered after this is abandoned (and backed off like a throttle).
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(30);
/// UpdateService calls in flight at once per cluster.
const FORCE_CONCURRENCY: usize = 8;

/// What a waiting rotation hears about its services.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    Progress {
        svc: ServiceRef,
        judgement: Judgement,
        running: i32,
        desired: i32,
    },
    Verdict {
        svc: ServiceRef,
        verdict: ServiceVerdict,
        /// DescribeServices calls that included the service while this rotation waited.
        polls: u64,
    },
}

pub type Updates = mpsc::UnboundedSender<Update>;

pub struct Coordinator<D> {
    inner: Arc<Inner<D>>,
}

impl<D> Clone for Coordinator<D> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<D> {
    deployer: Arc<D>,
    coalesce: Duration,
    step_timeout: Duration,
    telemetry: Arc<dyn Telemetry>,
    clusters: Mutex<HashMap<Key, Arc<Cluster>>>,
}

type Key = (Account, ClusterName);

struct Cluster {
    services: Mutex<BTreeMap<ServiceName, Entry>>,
    wake: Notify,
}

#[derive(Default)]
struct Entry {
    pending: Option<Pending>,
    watch: Option<Watch>,
}

/// A force not sent yet: sent at `at` for every joiner.
struct Pending {
    at: Instant,
    joiners: Vec<Joiner>,
}

struct Joiner {
    reply: oneshot::Sender<Result<Forced, AwsError>>,
    updates: Updates,
    timeout: Duration,
    fence: Option<Fence>,
}

/// A deployment we forced, followed until its verdict.
struct Watch {
    dep: DeploymentId,
    created: Option<DateTime<Utc>>,
    pace: Pace,
    /// ECS has listed our deployment (or the one that superseded it).
    listed: bool,
    last: Seen,
    waiters: Vec<Waiter>,
}

struct Waiter {
    updates: Updates,
    deadline: Instant,
    /// The pace's calls when this waiter joined.
    calls_before: u64,
}

impl Watch {
    fn last_deadline(&self) -> Option<Instant> {
        self.waiters.iter().map(|w| w.deadline).max()
    }

    /// The next poll, if it comes before the last waiter's deadline (none at or after it,
    /// like a waiter that ran out of attempts).
    fn next_poll(&self) -> Option<Instant> {
        let next = self.pace.next();
        self.last_deadline().filter(|d| next < *d).map(|_| next)
    }

    fn tell(&self, u: &Update) {
        for w in &self.waiters {
            let _ = w.updates.send(u.clone());
        }
    }

    fn conclude(self, svc: &ServiceRef, verdict: &ServiceVerdict) {
        for w in &self.waiters {
            let _ = w.updates.send(Update::Verdict {
                svc: svc.clone(),
                verdict: verdict.clone(),
                polls: self.pace.calls() - w.calls_before,
            });
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves plain data: keep going with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<D: Deployer> Coordinator<D> {
    pub fn new(
        deployer: Arc<D>,
        coalesce: Duration,
        step_timeout: Duration,
        telemetry: Arc<dyn Telemetry>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                deployer,
                coalesce,
                step_timeout,
                telemetry,
                clusters: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn deployer(&self) -> &D {
        &self.inner.deployer
    }

    /// Forces a new deployment of `svc` (shared with other rotations asking within the
    /// coalescing window) and, once started, follows it for at most `timeout`: the
    /// progress and the verdict arrive on `updates`. Returns the deployment started.
    pub async fn force(
        &self,
        account: &Account,
        svc: &ServiceRef,
        timeout: Duration,
        updates: &Updates,
    ) -> Result<Forced, AwsError> {
        let (reply, rx) = oneshot::channel();
        let joiner = Joiner {
            reply,
            updates: updates.clone(),
            timeout,
            fence: fence::current(),
        };
        let cluster = {
            let mut clusters = lock(&self.inner.clusters);
            let key = (account.clone(), svc.cluster.clone());
            let cluster = match clusters.get(&key) {
                Some(c) => c.clone(),
                None => {
                    let c = Arc::new(Cluster {
                        services: Mutex::new(BTreeMap::new()),
                        wake: Notify::new(),
                    });
                    clusters.insert(key.clone(), c.clone());
                    tokio::spawn(poll_cluster(self.inner.clone(), key, c.clone()));
                    c
                }
            };
            let mut services = lock(&cluster.services);
            let entry = services.entry(svc.service.clone()).or_default();
            match &mut entry.pending {
                Some(p) => p.joiners.push(joiner),
                None => {
                    entry.pending = Some(Pending {
                        at: Instant::now() + self.inner.coalesce,
                        joiners: vec![joiner],
                    })
                }
            }
            drop(services);
            cluster
        };
        cluster.wake.notify_one();
        rx.await.unwrap_or_else(|_| {
            Err(AwsError::new(
                ErrorClass::Transient,
                "UpdateService",
                "Abandoned",
                "the deploy coordinator stopped before forcing".to_string(),
            ))
        })
    }
}

/// One cluster's poller: sends due forces, polls due rollouts, and ends (removing the
/// cluster) when nothing is left to do.
async fn poll_cluster<D: Deployer>(inner: Arc<Inner<D>>, key: Key, cluster: Arc<Cluster>) {
    loop {
        let now = Instant::now();
        let (sends, due, next) = {
            let mut services = lock(&cluster.services);
            tidy(&key.1, &mut services, now);
            if services.is_empty() {
                drop(services);
                let mut clusters = lock(&inner.clusters);
                if lock(&cluster.services).is_empty() {
                    clusters.remove(&key);
                    return;
                }
                continue;
            }
            plan(&mut services, now)
        };
        if sends.is_empty() && due.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = cluster.wake.notified() => {}
            }
            continue;
        }
        if !sends.is_empty() {
            send(&inner, &key, &cluster, sends).await;
        }
        if !due.is_empty() {
            poll(&inner, &key, &cluster, due).await;
        }
    }
}

/// Drops joiners and waiters that went away, gives a stalled verdict to waiters whose
/// deadline passed, and forgets services nobody waits on.
fn tidy(cluster: &ClusterName, services: &mut BTreeMap<ServiceName, Entry>, now: Instant) {
    services.retain(|name, e| {
        if let Some(p) = &mut e.pending {
            p.joiners.retain(|j| !j.reply.is_closed());
            if p.joiners.is_empty() {
                e.pending = None;
            }
        }
        if let Some(w) = &mut e.watch {
            let svc = ServiceRef {
                cluster: cluster.clone(),
                service: name.clone(),
            };
            let (over, left): (Vec<Waiter>, Vec<Waiter>) =
                w.waiters.drain(..).partition(|x| x.deadline <= now);
            for x in over {
                let _ = x.updates.send(Update::Verdict {
                    svc: svc.clone(),
                    verdict: w.last.stalled(),
                    polls: w.pace.calls() - x.calls_before,
                });
            }
            w.waiters = left;
            w.waiters.retain(|x| !x.updates.is_closed());
            if w.waiters.is_empty() {
                e.watch = None;
            }
        }
        e.pending.is_some() || e.watch.is_some()
    });
}

type Sends = Vec<(ServiceName, Vec<Joiner>)>;

/// The forces due now, the services to poll now, and when to look again.
fn plan(
    services: &mut BTreeMap<ServiceName, Entry>,
    now: Instant,
) -> (Sends, Vec<ServiceName>, Instant) {
    let mut sends = Vec::new();
    let mut due = Vec::new();
    let mut next = now + Duration::from_secs(3600);
    for (name, e) in services.iter_mut() {
        if let Some(p) = &e.pending {
            if p.at <= now {
                if let Some(p) = e.pending.take() {
                    sends.push((name.clone(), p.joiners));
                }
            } else {
                next = next.min(p.at);
            }
        }
        if let Some(w) = &e.watch {
            if let Some(at) = w.next_poll() {
                if at <= now {
                    due.push(name.clone());
                } else {
                    next = next.min(at);
                }
            }
            if let Some(d) = w.waiters.iter().map(|x| x.deadline).min() {
                next = next.min(d);
            }
        }
    }
    (sends, due, next)
}

/// Sends the due forces, each under the lease of the first joiner still holding one.
async fn send<D: Deployer>(inner: &Arc<Inner<D>>, key: &Key, cluster: &Cluster, sends: Sends) {
    let jobs = sends.into_iter().map(|(name, joiners)| {
        let svc = ServiceRef {
            cluster: key.1.clone(),
            service: name,
        };
        force_one(inner, &key.0, svc, joiners)
    });
    let done: Vec<_> = futures::stream::iter(jobs)
        .buffer_unordered(FORCE_CONCURRENCY)
        .collect()
        .await;
    let mut services = lock(&cluster.services);
    for (svc, joiners, result) in done {
        let Some((forced, origin)) = result else {
            continue;
        };
        let entry = services.entry(svc.service.clone()).or_default();
        // An earlier deployment still watched is superseded by this one: its waiters
        // follow this one (they would, through the judgement, one poll later).
        let moved = entry.watch.take().map(|w| w.waiters).unwrap_or_default();
        let mut watch = Watch {
            dep: forced.id.clone(),
            created: forced.created,
            pace: Pace::new(origin),
            listed: false,
            last: Seen::default(),
            waiters: moved,
        };
        inner.telemetry.deployment_forced(joiners.len());
        if joiners.len() > 1 {
            tracing::info!(cluster = %svc.cluster, service = %svc.service, deployment = %forced.id, rotations = joiners.len(), "one deployment forced for several rotations");
        }
        for j in joiners {
            watch.waiters.push(Waiter {
                updates: j.updates,
                deadline: origin + j.timeout,
                calls_before: 0,
            });
            let _ = j.reply.send(Ok(forced.clone()));
        }
        entry.watch = Some(watch);
    }
}

/// One UpdateService for `joiners`, or none if all went away. Joiners whose lease is
/// lost are answered with that error and the next one tries. Returns the deployment and
/// when it was answered, or None when every joiner has had its answer.
async fn force_one<D: Deployer>(
    inner: &Arc<Inner<D>>,
    account: &Account,
    svc: ServiceRef,
    mut joiners: Vec<Joiner>,
) -> (ServiceRef, Vec<Joiner>, Option<(Forced, Instant)>) {
    loop {
        joiners.retain(|j| !j.reply.is_closed());
        let Some(first) = joiners.first() else {
            return (svc, joiners, None);
        };
        let call = tokio::time::timeout(
            inner.step_timeout,
            inner.deployer.force_deploy(account, &svc),
        );
        let r = match first.fence.clone() {
            Some(f) => fence::scope(f, call).await,
            None => call.await,
        };
        let r = r.unwrap_or_else(|_| {
            Err(AwsError::new(
                ErrorClass::Transient,
                "UpdateService",
                "Timeout",
                format!(
                    "timed out after {}",
                    crate::config::duration::format(inner.step_timeout)
                ),
            ))
        });
        match r {
            Ok(forced) => return (svc, joiners, Some((forced, Instant::now()))),
            Err(e) if fence::is_lease_lost(&e) => {
                let j = joiners.remove(0);
                let _ = j.reply.send(Err(e));
            }
            Err(e) => {
                for j in joiners.drain(..) {
                    let _ = j.reply.send(Err(e.clone()));
                }
                return (svc, joiners, None);
            }
        }
    }
}

/// One round: DescribeServices for the due services, ten per call, the last call filled
/// up with services not due yet (soonest first).
async fn poll<D: Deployer>(
    inner: &Arc<Inner<D>>,
    key: &Key,
    cluster: &Cluster,
    due: Vec<ServiceName>,
) {
    let mut names = due;
    {
        let services = lock(&cluster.services);
        let room = (DESCRIBE_BATCH - names.len() % DESCRIBE_BATCH) % DESCRIBE_BATCH;
        let mut others: Vec<(Instant, &ServiceName)> = services
            .iter()
            .filter(|(n, _)| !names.contains(n))
            .filter_map(|(n, e)| {
                e.watch
                    .as_ref()
                    .and_then(|w| w.next_poll())
                    .map(|at| (at, n))
            })
            .collect();
        others.sort();
        names.extend(others.into_iter().take(room).map(|(_, n)| n.clone()));
    }
    let calls = names.chunks(DESCRIBE_BATCH).map(|chunk| async move {
        {
            let at = Instant::now();
            let mut services = lock(&cluster.services);
            for n in chunk {
                if let Some(w) = services.get_mut(n).and_then(|e| e.watch.as_mut()) {
                    w.pace.polled(at);
                }
            }
        }
        let r = tokio::time::timeout(
            DESCRIBE_TIMEOUT,
            inner.deployer.describe(&key.0, &key.1, chunk),
        )
        .await;
        inner.telemetry.describe_services_called();
        apply(&key.1, cluster, chunk, r);
    });
    futures::future::join_all(calls).await;
}

type Answer = Result<Result<Vec<Described>, AwsError>, tokio::time::error::Elapsed>;

fn apply(cluster_name: &ClusterName, cluster: &Cluster, chunk: &[ServiceName], r: Answer) {
    let now = Instant::now();
    let mut services = lock(&cluster.services);
    let svc = |n: &ServiceName| ServiceRef {
        cluster: cluster_name.clone(),
        service: n.clone(),
    };
    match r {
        Ok(Ok(states)) => {
            for (name, st) in chunk.iter().zip(states) {
                let Some(entry) = services.get_mut(name) else {
                    continue;
                };
                let Some(w) = entry.watch.as_mut() else {
                    continue;
                };
                w.pace.answered();
                let verdict = match st {
                    Described::Missing(reason) => Some(ServiceVerdict::Missing { reason }),
                    Described::Found(state) => observe(&svc(name), w, state, now),
                };
                if let Some(v) = verdict {
                    if let Some(w) = entry.watch.take() {
                        w.conclude(&svc(name), &v);
                    }
                }
            }
        }
        Ok(Err(e)) if !e.is_retryable() => {
            tracing::warn!(error = %e, cluster = %cluster_name, "DescribeServices failed");
            for name in chunk {
                if let Some(w) = services.get_mut(name).and_then(|e| e.watch.take()) {
                    w.conclude(
                        &svc(name),
                        &ServiceVerdict::Failed {
                            error: e.to_string(),
                        },
                    );
                }
            }
        }
        other => {
            match other {
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, cluster = %cluster_name, "DescribeServices failed; backing off")
                }
                _ => {
                    tracing::warn!(cluster = %cluster_name, "DescribeServices did not answer; backing off")
                }
            }
            for name in chunk {
                if let Some(w) = services.get_mut(name).and_then(|e| e.watch.as_mut()) {
                    w.pace.throttled(now);
                }
            }
        }
    }
}

/// Judges one answer for a watched deployment: the verdict, if it is final.
fn observe(
    svc: &ServiceRef,
    w: &mut Watch,
    state: super::deploy::ServiceState,
    now: Instant,
) -> Option<ServiceVerdict> {
    let dep = w.dep.clone();
    let mine = state.deployments.iter().find(|d| d.id == dep);
    if w.created.is_none() {
        w.created = mine.and_then(|m| m.created);
    }
    if mine.is_some() {
        w.listed = true;
    }
    let mut j = judge(&state, &dep, w.created);
    if matches!(j, Judgement::RolledBack(_))
        && mine.is_none()
        && !w.listed
        && now.saturating_duration_since(w.pace.origin()) < VISIBILITY_GRACE
        && !state.events.iter().any(|e| names_deployment(e, &dep))
    {
        // Possibly a read from before our UpdateService (which cannot hold an event
        // naming ours).
        j = Judgement::Starting;
    }
    let (running, desired, failed) = mine.map_or((0, state.desired, 0), |d| {
        (d.running, d.desired, d.failed_tasks)
    });
    w.tell(&Update::Progress {
        svc: svc.clone(),
        judgement: j.clone(),
        running,
        desired,
    });
    w.last = Seen {
        running,
        desired,
        failed_tasks: failed,
        events: state.events.iter().take(STALLED_EVENTS).cloned().collect(),
    };
    match j {
        Judgement::Stable => Some(ServiceVerdict::Stable),
        Judgement::RolledBack(reason) => Some(ServiceVerdict::RolledBack {
            reason,
            events: relevant_events(&state.events, &dep),
        }),
        Judgement::Missing(reason) => Some(ServiceVerdict::Missing { reason }),
        Judgement::Superseded(later) => {
            tracing::info!(cluster = %svc.cluster, service = %svc.service, deployment = %dep, replaced_by = %later, "a later deployment replaced ours; waiting on it");
            w.created = state
                .deployments
                .iter()
                .find(|d| d.id == later)
                .and_then(|d| d.created);
            w.dep = later;
            w.listed = true;
            None
        }
        Judgement::Starting | Judgement::Draining => {
            if imminent(&state, &dep) {
                w.pace.offer_spare(now);
            }
            None
        }
    }
}

impl<D: Deployer> Coordinator<D> {
    /// Forces every service and waits for each verdict (for callers without steps of
    /// their own between the two: tests, benchmarks).
    pub async fn redeploy_and_wait(
        &self,
        account: &Account,
        services: &[ServiceRef],
        timeout: Duration,
        observer: &dyn super::Observer,
    ) -> BTreeMap<ServiceRef, ServiceVerdict> {
        let (tx, rx) = mpsc::unbounded_channel();
        let forces = services
            .iter()
            .map(|s| async { (s.clone(), self.force(account, s, timeout, &tx).await) });
        let mut verdicts = BTreeMap::new();
        let mut started = std::collections::BTreeSet::new();
        for (svc, r) in futures::future::join_all(forces).await {
            match r {
                Ok(_) => {
                    started.insert(svc);
                }
                Err(e) => {
                    verdicts.insert(
                        svc,
                        ServiceVerdict::Failed {
                            error: e.to_string(),
                        },
                    );
                }
            }
        }
        drop(tx);
        let guard = Instant::now() + timeout + self.inner.step_timeout;
        verdicts.extend(
            collect(rx, started, guard, observer)
                .await
                .into_iter()
                .map(|(s, (v, _))| (s, v)),
        );
        verdicts
    }
}

/// Receives the verdict of every service in `waiting` (passing progress to `observer`),
/// with the DescribeServices calls each took. A service without a verdict by `guard`
/// (the coordinator gone) is stalled.
pub async fn collect(
    mut rx: mpsc::UnboundedReceiver<Update>,
    mut waiting: std::collections::BTreeSet<ServiceRef>,
    guard: Instant,
    observer: &dyn super::Observer,
) -> BTreeMap<ServiceRef, (ServiceVerdict, u64)> {
    let mut verdicts = BTreeMap::new();
    let mut first = true;
    while !waiting.is_empty() {
        match tokio::time::timeout_at(guard, rx.recv()).await {
            Ok(Some(Update::Progress {
                svc,
                judgement,
                running,
                desired,
            })) => {
                if first {
                    first = false;
                    crate::failpoint!("during-wait");
                }
                observer.service_progress(&svc, &judgement, running, desired);
            }
            Ok(Some(Update::Verdict {
                svc,
                verdict,
                polls,
            })) => {
                if waiting.remove(&svc) {
                    verdicts.insert(svc, (verdict, polls));
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    for svc in waiting {
        verdicts.insert(svc, (Seen::default().stalled(), 0));
    }
    verdicts
}
