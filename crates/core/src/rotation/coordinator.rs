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
//! - **Events** ([`listen`]): with ECS deployment state change events arriving (an SQS
//!   queue fed by EventBridge), a watched deployment is polled once to confirm an event
//!   about it (retried briefly while ECS does not show it yet), and otherwise only by a
//!   slow safety poll: events can be lost or late. While the queue cannot be read, the
//!   waiter's schedule applies again.
//!
//! Forces run under the lease of a rotation that asked ([`fence`]): the first whose lease
//! still holds.

use super::deploy::DESCRIBE_BATCH;
use super::deploy::{judge, names_deployment, Deployer, Described, Forced, Judgement};
use super::events::{DeployEvent, DeployEventKind, DeployEvents};
use super::lease::{fence, Fence};
use super::wait::{imminent, relevant_events, Pace, Seen, ServiceVerdict, STALLED_EVENTS};
use super::wait::{Mode, VISIBILITY_GRACE};
use crate::clock::Clock;
use crate::error::{AwsError, ErrorClass};
use crate::ids::{Account, ClusterName, DeploymentId, ServiceName, ServiceRef};
use crate::telemetry::Telemetry;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

/// `[daemon] redeploy_coalesce` by default: rotations of one service that reach their
/// redeploy within this of each other (secrets due together) share one deployment.
pub const DEFAULT_COALESCE: Duration = Duration::from_secs(3);
/// A DescribeServices unanswered after this is abandoned (and backed off like a throttle).
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(30);
/// Unmatched events kept for deployments not followed yet: how long, and how many.
const EARLY_EVENTS_KEPT: Duration = Duration::from_secs(120);
const EARLY_EVENTS_MAX: usize = 1024;
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
    /// Events that matched no followed deployment, kept briefly (see `on_event`).
    early: Mutex<VecDeque<(Instant, DeployEvent)>>,
    /// Numbers the UpdateService calls in the order they are sent.
    sends: AtomicU64,
    /// Wall clock, for the lateness of a verdict behind the event that announced it.
    clock: Arc<dyn Clock>,
    /// The safety poll when events are configured; None: the waiter's schedule only.
    safety: Option<Duration>,
    /// Events are being received (the last receive succeeded).
    events_live: AtomicBool,
}

impl<D> Inner<D> {
    fn mode(&self) -> Mode {
        match self.safety {
            Some(safety) if self.events_live.load(Ordering::Relaxed) => Mode::Events { safety },
            _ => Mode::Waiter,
        }
    }
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
    /// UpdateService calls in flight: the entry (and its cluster's poller) stays.
    sending: u32,
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
    /// Order of the UpdateService calls: a later one supersedes an earlier one.
    seq: u64,
    /// A DescribeServices including it is in flight: not polled again until answered.
    in_flight: bool,
    /// A call listing it with others was refused (not throttled): described alone from
    /// now on, so one service's refusal (say, a policy naming service ARNs) fails no
    /// other rotation's service.
    solo: bool,
    dep: DeploymentId,
    created: Option<DateTime<Utc>>,
    pace: Pace,
    /// ECS has listed our deployment (or the one that superseded it).
    listed: bool,
    last: Seen,
    waiters: Vec<Waiter>,
    /// When ECS said (by an event) that the deployment followed completed or failed.
    event_at: Option<DateTime<Utc>>,
    /// An event about this deployment arrived: events reach us for it, so the slow
    /// safety poll may replace the waiter's schedule. Until then (a region or account
    /// whose events go elsewhere, a queue another reader empties) the waiter's applies.
    heard: bool,
    /// The schedules of waiters moved here from a deployment this one superseded: they
    /// keep being polled on their own waiter's schedule, not later.
    carried: Vec<Pace>,
}

struct Waiter {
    updates: Updates,
    deadline: Instant,
}

impl Watch {
    fn last_deadline(&self) -> Option<Instant> {
        self.waiters.iter().map(|w| w.deadline).max()
    }

    /// The next poll, if it comes before the last waiter's deadline (none at or after it,
    /// like a waiter that ran out of attempts).
    fn next_poll(&self, mode: Mode) -> Option<Instant> {
        if self.in_flight {
            return None;
        }
        let mode = if self.heard { mode } else { Mode::Waiter };
        let deadline = self.last_deadline()?;
        let mut next = self.pace.next(mode);
        for c in &self.carried {
            next = next.min(c.next(Mode::Waiter));
        }
        if next < deadline {
            return Some(next);
        }
        // With events, the last stretch before the deadline keeps the waiter's schedule:
        // a lost event must not turn a rollout polling would see complete into a stall.
        let last = self.pace.next(Mode::Waiter);
        (mode != Mode::Waiter && last < deadline).then_some(last)
    }

    fn polled(&mut self, at: Instant) {
        self.pace.polled(at);
        for c in &mut self.carried {
            c.polled(at);
        }
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
                polls: self.pace.calls(),
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
        Self::with_events(
            deployer,
            coalesce,
            step_timeout,
            telemetry,
            None,
            Arc::new(crate::clock::SystemClock),
        )
    }

    /// `safety`: deployment events will arrive through [`listen`]; poll this often besides.
    pub fn with_events(
        deployer: Arc<D>,
        coalesce: Duration,
        step_timeout: Duration,
        telemetry: Arc<dyn Telemetry>,
        safety: Option<Duration>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                deployer,
                coalesce,
                step_timeout,
                telemetry,
                clusters: Mutex::new(HashMap::new()),
                early: Mutex::new(VecDeque::new()),
                sends: AtomicU64::new(0),
                clock,
                safety,
                events_live: AtomicBool::new(false),
            }),
        }
    }

    /// Whether events are being received: the pace follows (see the module docs).
    pub fn set_events_live(&self, live: bool) {
        self.inner.telemetry.events_receiving(live);
        if self.inner.events_live.swap(live, Ordering::Relaxed) != live {
            for c in lock(&self.inner.clusters).values() {
                c.wake.notify_one();
            }
        }
    }

    /// A deployment event: the watches it concerns (our deployment by id, or any other
    /// deployment of a watched service: a rollback or someone else's) are polled now to
    /// confirm it. Returns whether any watch was concerned.
    pub fn on_event(&self, ev: &DeployEvent) -> bool {
        let matched = self.match_event(ev);
        if !matched {
            // Perhaps about a deployment whose UpdateService answer is not followed yet
            // (a batch starts up to 2 s after its first answer): kept a while for it.
            let now = Instant::now();
            let mut early = lock(&self.inner.early);
            early.retain(|(at, _)| now.saturating_duration_since(*at) < EARLY_EVENTS_KEPT);
            if early.len() >= EARLY_EVENTS_MAX {
                early.pop_front();
            }
            early.push_back((now, ev.clone()));
        }
        matched
    }

    fn match_event(&self, ev: &DeployEvent) -> bool {
        let (cluster, service) = service_of(&ev.service_arn);
        let now = Instant::now();
        let mut matched = false;
        for ((_, cname), c) in lock(&self.inner.clusters).iter() {
            if cluster.is_some_and(|x| x != cname.as_str()) {
                continue;
            }
            let mut woke = false;
            for (name, e) in lock(&c.services).iter_mut() {
                let Some(w) = e.watch.as_mut() else { continue };
                let ours = w.dep == ev.deployment_id;
                if !ours && service != Some(name.as_str()) {
                    continue;
                }
                if ours {
                    w.heard = true;
                    if ev.kind == DeployEventKind::InProgress {
                        matched = true;
                        continue; // Our own start: nothing to confirm.
                    }
                    w.event_at = ev.at;
                }
                w.pace.confirm(now);
                woke = true;
            }
            if woke {
                matched = true;
                c.wake.notify_one();
            }
        }
        matched
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
                    tokio::spawn(supervise(self.inner.clone(), key, c.clone()));
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

/// Runs a cluster's poller; if it panics, forgets the cluster: every rotation waiting
/// there then hears that the coordinator stopped (their channels close) instead of
/// waiting for a poller that is gone, and the next request starts a new one.
async fn supervise<D: Deployer>(inner: Arc<Inner<D>>, key: Key, cluster: Arc<Cluster>) {
    let run = std::panic::AssertUnwindSafe(poll_cluster(inner.clone(), key.clone(), cluster));
    if run.catch_unwind().await.is_err() {
        tracing::error!(cluster = %key.1, "the deploy coordinator's poller panicked; its waits end and new requests start afresh");
        lock(&inner.clusters).remove(&key);
    }
}

/// One cluster's poller: starts due forces and due polls (each in its own task, so a slow
/// call delays nobody else), and ends (removing the cluster) when nothing is left.
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
            let mode = inner.mode();
            let (sends, due, next) = plan(&mut services, now, mode);
            let due = if due.is_empty() {
                Vec::new()
            } else {
                fill(&mut services, due, mode, now)
            };
            (sends, due, next)
        };
        if !sends.is_empty() {
            tokio::spawn(send(inner.clone(), key.clone(), cluster.clone(), sends));
        }
        for chunk in due {
            tokio::spawn(poll(inner.clone(), key.clone(), cluster.clone(), chunk));
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = cluster.wake.notified() => {}
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
                    polls: w.pace.calls(),
                });
            }
            w.waiters = left;
            w.waiters.retain(|x| !x.updates.is_closed());
            if w.waiters.is_empty() {
                e.watch = None;
            }
        }
        e.pending.is_some() || e.watch.is_some() || e.sending > 0
    });
}

type Sends = Vec<(ServiceName, Vec<Joiner>)>;

/// The forces due now, the services to poll now, and when to look again.
fn plan(
    services: &mut BTreeMap<ServiceName, Entry>,
    now: Instant,
    mode: Mode,
) -> (Sends, Vec<ServiceName>, Instant) {
    let mut sends = Vec::new();
    let mut due = Vec::new();
    let mut next = now + Duration::from_secs(3600);
    for (name, e) in services.iter_mut() {
        if let Some(p) = &e.pending {
            if p.at <= now {
                if let Some(p) = e.pending.take() {
                    e.sending += 1;
                    sends.push((name.clone(), p.joiners));
                }
            } else {
                next = next.min(p.at);
            }
        }
        if let Some(w) = &e.watch {
            if let Some(at) = w.next_poll(mode) {
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

/// How long the first answers of a batch of forces wait for the rest, so that their
/// rollouts share one schedule (and one DescribeServices per round), as one
/// `aws ecs wait services-stable --services ...` run after the forces would.
const BATCH_SPREAD: Duration = Duration::from_secs(2);

/// Sends a batch of due forces, each under the lease of the first joiner still holding
/// one, and starts following each deployment. Answers within [`BATCH_SPREAD`] of the
/// first start together (one origin); later ones start on their own.
async fn send<D: Deployer>(inner: Arc<Inner<D>>, key: Key, cluster: Arc<Cluster>, sends: Sends) {
    let names: Vec<ServiceName> = sends.iter().map(|(n, _)| n.clone()).collect();
    let jobs = sends.into_iter().map(|(name, joiners)| {
        let svc = ServiceRef {
            cluster: key.1.clone(),
            service: name,
        };
        let seq = inner.sends.fetch_add(1, Ordering::Relaxed);
        force_one(&inner, &key.0, svc, joiners, seq)
    });
    let mut answers = futures::stream::iter(jobs)
        .buffer_unordered(FORCE_CONCURRENCY)
        .map(answered);
    let mut held = Vec::new();
    let mut spread: Option<Instant> = None;
    let mut spread_over = false;
    loop {
        let next = match spread {
            Some(t) if !spread_over => match tokio::time::timeout_at(t, answers.next()).await {
                Ok(n) => n,
                Err(_) => {
                    spread_over = true;
                    start(&inner, &cluster, std::mem::take(&mut held));
                    continue;
                }
            },
            _ => answers.next().await,
        };
        let Some(answer) = next else { break };
        if spread_over {
            start(&inner, &cluster, vec![answer]);
            continue;
        }
        spread.get_or_insert_with(|| Instant::now() + BATCH_SPREAD);
        held.push(answer);
    }
    start(&inner, &cluster, held);
    let mut services = lock(&cluster.services);
    for n in &names {
        if let Some(e) = services.get_mut(n) {
            e.sending = e.sending.saturating_sub(1);
        }
    }
    drop(services);
    cluster.wake.notify_one();
}

type Answer1 = (ServiceRef, Vec<Joiner>, Option<(Forced, u64)>);

/// A deployment started for some rotations, who have their answer already; they are
/// followed from when their batch starts.
struct Started {
    svc: ServiceRef,
    forced: Forced,
    seq: u64,
    /// Each rotation's updates channel and stable timeout.
    waiters: Vec<(Updates, Duration)>,
}

/// Answers every joiner at once (the rotation goes on to its wait), keeping what the
/// watch needs.
fn answered(a: Answer1) -> Option<Started> {
    let (svc, joiners, result) = a;
    let (forced, seq) = result?;
    let waiters = joiners
        .into_iter()
        .map(|j| {
            let _ = j.reply.send(Ok(forced.clone()));
            (j.updates, j.timeout)
        })
        .collect();
    Some(Started {
        svc,
        forced,
        seq,
        waiters,
    })
}

/// What events that came before a deployment was followed said of it: heard at all,
/// when it completed or failed, and whether that needs confirming.
fn early_news<D>(inner: &Inner<D>, dep: &DeploymentId) -> (bool, Option<DateTime<Utc>>, bool) {
    let early = lock(&inner.early);
    let mut news = (false, None, false);
    for (_, ev) in early.iter().filter(|(_, e)| &e.deployment_id == dep) {
        news.0 = true;
        if ev.kind != DeployEventKind::InProgress {
            news.1 = ev.at;
            news.2 = true;
        }
    }
    news
}

/// Starts following the deployments of `answers`, from now (one origin for all).
fn start<D>(inner: &Inner<D>, cluster: &Cluster, answers: Vec<Option<Started>>) {
    if answers.is_empty() {
        return;
    }
    let origin = Instant::now();
    let mut services = lock(&cluster.services);
    for Started {
        svc,
        forced,
        seq,
        waiters,
    } in answers.into_iter().flatten()
    {
        let entry = services.entry(svc.service.clone()).or_default();
        inner.telemetry.deployment_forced(waiters.len());
        if waiters.len() > 1 {
            tracing::info!(cluster = %svc.cluster, service = %svc.service, deployment = %forced.id, rotations = waiters.len(), "one deployment forced for several rotations");
        }
        let mut carried = Vec::new();
        let mut waiters: Vec<Waiter> = waiters
            .into_iter()
            .map(|(updates, timeout)| Waiter {
                updates,
                deadline: origin + timeout,
            })
            .collect();
        match entry.watch.as_mut() {
            // A deployment sent after this one is followed already (its answer came
            // first): it started later still, so this one's rotations wait on it.
            Some(w) if w.seq > seq => {
                w.waiters.append(&mut waiters);
                continue;
            }
            // An earlier deployment still followed is superseded by this one: its
            // waiters follow this one (they would, through the judgement, one poll later),
            // still polled on their own schedule.
            Some(w) => {
                waiters.append(&mut w.waiters);
                carried.append(&mut w.carried);
                carried.push(w.pace.clone());
            }
            None => {}
        }
        let (heard, event_at, confirm) = early_news(inner, &forced.id);
        let mut pace = Pace::new(origin);
        if confirm {
            pace.confirm(origin);
        }
        entry.watch = Some(Watch {
            seq,
            in_flight: false,
            solo: false,
            dep: forced.id.clone(),
            created: forced.created,
            pace,
            listed: false,
            last: Seen::default(),
            waiters,
            event_at,
            heard,
            carried,
        });
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
    seq: u64,
) -> Answer1 {
    loop {
        joiners.retain(|j| !j.reply.is_closed());
        let Some(first) = joiners.first() else {
            return (svc, joiners, None);
        };
        let call = tokio::time::timeout(
            inner.step_timeout,
            std::panic::AssertUnwindSafe(inner.deployer.force_deploy(account, &svc)).catch_unwind(),
        );
        let r = match first.fence.clone() {
            Some(f) => fence::scope(f, call).await,
            None => call.await,
        };
        let r = r.map(|r| r.unwrap_or_else(|_| Err(panicked("UpdateService"))));
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
            Ok(forced) => return (svc, joiners, Some((forced, seq))),
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

/// The error a call that panicked (a bug in an adapter) is reported as.
fn panicked(operation: &'static str) -> AwsError {
    AwsError::new(
        ErrorClass::Other,
        operation,
        "Panicked",
        "the call panicked (a bug; see the log)".to_string(),
    )
}

/// One round's calls: the due services ten per call, the last call filled up with
/// services not due yet (soonest first); a `solo` service alone in its call. Each is
/// marked polled and in flight.
fn fill(
    services: &mut BTreeMap<ServiceName, Entry>,
    due: Vec<ServiceName>,
    mode: Mode,
    now: Instant,
) -> Vec<Vec<ServiceName>> {
    let solo = |services: &BTreeMap<ServiceName, Entry>, n: &ServiceName| {
        services
            .get(n)
            .and_then(|e| e.watch.as_ref())
            .is_some_and(|w| w.solo)
    };
    let (alone, mut shared): (Vec<ServiceName>, Vec<ServiceName>) =
        due.into_iter().partition(|n| solo(services, n));
    let room = (DESCRIBE_BATCH - shared.len() % DESCRIBE_BATCH) % DESCRIBE_BATCH;
    let mut others: Vec<(Instant, &ServiceName)> = services
        .iter()
        .filter(|(n, _)| !shared.contains(n) && !alone.contains(n))
        .filter_map(|(n, e)| {
            e.watch
                .as_ref()
                .filter(|w| !w.solo)
                .and_then(|w| w.next_poll(mode))
                .map(|at| (at, n))
        })
        .collect();
    others.sort();
    let fillers: Vec<ServiceName> = others
        .into_iter()
        .take(room)
        .map(|(_, n)| n.clone())
        .collect();
    shared.extend(fillers);
    let mut calls: Vec<Vec<ServiceName>> =
        shared.chunks(DESCRIBE_BATCH).map(|c| c.to_vec()).collect();
    calls.extend(alone.into_iter().map(|n| vec![n]));
    for n in calls.iter().flatten() {
        if let Some(w) = services.get_mut(n).and_then(|e| e.watch.as_mut()) {
            w.polled(now);
            w.in_flight = true;
        }
    }
    calls
}

/// One DescribeServices call, its answer applied to the services it listed.
async fn poll<D: Deployer>(
    inner: Arc<Inner<D>>,
    key: Key,
    cluster: Arc<Cluster>,
    chunk: Vec<ServiceName>,
) {
    let call = std::panic::AssertUnwindSafe(inner.deployer.describe(&key.0, &key.1, &chunk))
        .catch_unwind()
        .map(|r| r.unwrap_or_else(|_| Err(panicked("DescribeServices"))));
    let r = tokio::time::timeout(DESCRIBE_TIMEOUT, call).await;
    inner.telemetry.describe_services_called();
    apply(&inner, &key.1, &cluster, &chunk, r);
    cluster.wake.notify_one();
}

type Answer = Result<Result<Vec<Described>, AwsError>, tokio::time::error::Elapsed>;

fn apply<D>(
    inner: &Inner<D>,
    cluster_name: &ClusterName,
    cluster: &Cluster,
    chunk: &[ServiceName],
    r: Answer,
) {
    let now = Instant::now();
    let mut services = lock(&cluster.services);
    let svc = |n: &ServiceName| ServiceRef {
        cluster: cluster_name.clone(),
        service: n.clone(),
    };
    for n in chunk {
        if let Some(w) = services.get_mut(n).and_then(|e| e.watch.as_mut()) {
            w.in_flight = false;
        }
    }
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
                    Described::Found(state) => observe(&svc(name), w, state, now, 0),
                };
                match verdict {
                    Some(v) => {
                        if let Some(w) = entry.watch.take() {
                            if let Some(at) = w.event_at {
                                let late = (inner.clock.now() - at).to_std().unwrap_or_default();
                                inner.telemetry.event_lateness(late.as_secs_f64());
                            }
                            w.conclude(&svc(name), &v);
                        }
                    }
                    None => {
                        if let Some(w) = entry.watch.as_mut() {
                            w.pace.no_verdict(now);
                        }
                    }
                }
            }
        }
        Ok(Err(e)) if !e.is_retryable() && chunk.len() > 1 => {
            // Whose service was refused is not known: each is described alone next.
            tracing::warn!(error = %e, cluster = %cluster_name, "DescribeServices failed; describing each service alone");
            for name in chunk {
                if let Some(w) = services.get_mut(name).and_then(|e| e.watch.as_mut()) {
                    w.solo = true;
                    w.pace.throttled(now);
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
    depth: u32,
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
            // The event, if any, was about ours; the answer is judged again for the later.
            w.event_at = None;
            if depth < 3 {
                return observe(svc, w, state, now, depth + 1);
            }
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

/// The cluster and service names in a service ARN: `arn:aws:ecs:R:A:service/CLUSTER/NAME`,
/// or the old `arn:aws:ecs:R:A:service/NAME` (no cluster).
fn service_of(arn: &str) -> (Option<&str>, Option<&str>) {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or("");
    let mut parts = resource.split('/');
    if parts.next() != Some("service") {
        return (None, None);
    }
    match (parts.next(), parts.next(), parts.next()) {
        (Some(c), Some(n), None) => (Some(c), Some(n)),
        (Some(n), None, None) => (None, Some(n)),
        _ => (None, None),
    }
}

/// Receives deployment events until `shutdown`, hands each to the coordinator and deletes
/// every message received (the queue is this replica's own: a message left there comes
/// back after its visibility timeout, forever). A failed receive switches the coordinator
/// back to the waiter's schedule until a receive succeeds again.
pub async fn listen<E: DeployEvents, D: Deployer>(
    events: E,
    coordinator: Coordinator<D>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    /// SQS's longest long poll.
    const WAIT: Duration = Duration::from_secs(20);
    let mut backoff = Duration::ZERO;
    tokio::pin!(shutdown);
    loop {
        let received = tokio::select! {
            _ = &mut shutdown => return,
            r = tokio::time::timeout(WAIT + Duration::from_secs(10), events.receive(WAIT)) => r,
        };
        match received {
            Ok(Ok(batch)) => {
                backoff = Duration::ZERO;
                coordinator.set_events_live(true);
                for ev in &batch.events {
                    let matched = coordinator.on_event(ev);
                    tracing::debug!(deployment = %ev.deployment_id, kind = ?ev.kind, matched, "deployment event");
                }
                if !batch.handles.is_empty() {
                    if let Err(e) = events.delete(&batch.handles).await {
                        tracing::warn!(error = %e, "could not delete handled deployment events; they will be received again");
                    }
                }
            }
            Ok(Err(e)) => {
                coordinator.set_events_live(false);
                backoff = (backoff * 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
                tracing::warn!(error = %e, retry_in = ?backoff, "cannot receive deployment events; following rollouts by polling meanwhile");
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
            }
            Err(_) => {
                coordinator.set_events_live(false);
                tracing::warn!("receiving deployment events timed out; following rollouts by polling meanwhile");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::service_of;

    #[test]
    fn service_arns_name_the_cluster_and_service() {
        assert_eq!(
            service_of("arn:aws:ecs:us-east-1:111122223333:service/prod/api"),
            (Some("prod"), Some("api"))
        );
        assert_eq!(
            service_of("arn:aws:ecs:us-east-1:111122223333:service/api"),
            (None, Some("api"))
        );
        for bad in [
            "",
            "arn:aws:ecs:us-east-1:111122223333:task/prod/abc",
            "arn:aws:ecs:us-east-1:111122223333:service/a/b/c",
            "not an arn",
        ] {
            assert_eq!(service_of(bad), (None, None), "{bad}");
        }
    }
}
