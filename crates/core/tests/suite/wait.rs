//! The wait for stability, through the deploy coordinator, against ECS as AWS documents
//! it: any rollout shape (properties over random timelines, compared with the CLI
//! waiter's schedule), eventually consistent reads, several rollouts on one cluster.

use proptest::prelude::*;
use rotator_core::error::AwsError;
use rotator_core::ids::{Account, ClusterName, DeploymentId, ServiceName, ServiceRef};
use rotator_core::rotation::coordinator::Coordinator;
use rotator_core::rotation::deploy::{
    judge, names_deployment, Deployer, Described, Forced, Judgement, ServiceState,
};
use rotator_core::rotation::wait::{ServiceVerdict, WAITER_PERIOD};
use rotator_core::rotation::Quiet;
use rotator_core::telemetry::NoTelemetry;
use rotator_test_kit::ecs::deployment;
use rotator_test_kit::{at, svc, Behaviour, FakeEcs, ManualClock, Sequence};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

const NEVER: u64 = u64::MAX;

/// One rollout as ECS shows it over time, in milliseconds after UpdateService answered.
#[derive(Clone, Debug)]
struct Rollout {
    /// When each new task reaches RUNNING (NEVER: it never does: a stall).
    starts: Vec<u64>,
    /// When each old task has stopped (before, between or after the starts).
    drains: Vec<u64>,
    /// From the last old task stopped to the old deployment leaving the list.
    list_lag: u64,
    /// From settled (only ours, all running) to rolloutState COMPLETED.
    complete_lag: u64,
    /// The circuit breaker fails ours at this time.
    rollback_at: Option<u64>,
    /// Someone else forces a deployment at this time; it rolls out like `then`.
    superseded: Option<(u64, Box<Rollout>)>,
}

fn base() -> chrono::DateTime<chrono::Utc> {
    at("2030-01-01T00:00:00Z")
}

impl Rollout {
    fn desired(&self) -> i32 {
        self.starts.len() as i32
    }

    /// The service `t` ms after our UpdateService; our deployment is `id`, created at
    /// `created` ms (0 for ours; a superseding one's later).
    fn state(&self, id: &str, created: i64, t: u64) -> ServiceState {
        if let Some((x, then)) = &self.superseded {
            if t >= *x {
                return then.state("theirs", created + *x as i64, t - x);
            }
        }
        let desired = self.desired();
        let new_running = self.starts.iter().filter(|s| **s <= t).count() as i32;
        let old_running = self.drains.iter().filter(|d| **d > t).count() as i32;
        let last_drain = self.drains.iter().copied().max().unwrap_or(0);
        let old_listed = t < last_drain.saturating_add(self.list_lag);
        let last_start = self.starts.iter().copied().max().unwrap_or(0);
        let settled = last_start.max(last_drain.saturating_add(self.list_lag));
        let completed_at = settled.saturating_add(self.complete_lag);
        let mut deployments = Vec::new();
        // The circuit breaker (or an alarm in the bake time) fails a deployment in progress;
        // ECS never turns a COMPLETED one into FAILED, so a later rollback_at is none.
        if let Some(r) = self.rollback_at.filter(|r| *r <= t && *r < completed_at) {
            // Ours FAILED, the earlier deployment back as PRIMARY.
            let _ = r;
            deployments.push(deployment(
                "old",
                "PRIMARY",
                "IN_PROGRESS",
                old_running,
                desired,
                -86_400_000,
            ));
            deployments.push(deployment(
                id,
                "ACTIVE",
                "FAILED",
                new_running,
                desired,
                created,
            ));
        } else {
            let completed = new_running == desired && !old_listed && t >= completed_at;
            let state = if completed {
                "COMPLETED"
            } else {
                "IN_PROGRESS"
            };
            deployments.push(deployment(
                id,
                "PRIMARY",
                state,
                new_running,
                desired,
                created,
            ));
            if old_listed {
                deployments.push(deployment(
                    "old",
                    "ACTIVE",
                    "COMPLETED",
                    old_running,
                    desired,
                    -86_400_000,
                ));
            }
        }
        ServiceState {
            status: "ACTIVE".into(),
            controller: None,
            desired,
            running: new_running + old_running,
            deployments,
            events: vec![],
        }
    }

    /// The CLI waiter's schedule (a call at once, then every 15 s) with our stability
    /// rule: when it would see a final verdict, and the verdict's label. None: not within
    /// `timeout`.
    fn waiter(&self, timeout: Duration) -> Option<(u64, &'static str)> {
        let period = WAITER_PERIOD.as_millis() as u64;
        let mut dep = DeploymentId::from("ours");
        let mut created = Some(base());
        let mut k = 0;
        while k * period < timeout.as_millis() as u64 {
            let t = k * period;
            let st = self.state("ours", 0, t);
            match judge(&st, &dep, created) {
                Judgement::Stable => return Some((t, "stable")),
                Judgement::RolledBack(_) => return Some((t, "rolled_back")),
                Judgement::Missing(_) => return Some((t, "missing")),
                Judgement::Superseded(l) => {
                    created = st
                        .deployments
                        .iter()
                        .find(|d| d.id == l)
                        .and_then(|d| d.created);
                    dep = l;
                    continue;
                }
                _ => {}
            }
            k += 1;
        }
        None
    }
}

/// ECS showing one rollout per service, timed from each service's UpdateService.
#[derive(Default)]
struct Timelines {
    rollouts: BTreeMap<String, Rollout>,
    forced_at: Mutex<BTreeMap<String, Instant>>,
    /// Each DescribeServices: when, and which services.
    calls: Mutex<Vec<(Instant, Vec<String>)>>,
}

impl Deployer for Timelines {
    async fn describe(
        &self,
        _account: &Account,
        _cluster: &ClusterName,
        services: &[ServiceName],
    ) -> Result<Vec<Described>, AwsError> {
        let now = Instant::now();
        let names: Vec<String> = services.iter().map(|s| s.as_str().to_string()).collect();
        self.calls.lock().unwrap().push((now, names.clone()));
        let forced = self.forced_at.lock().unwrap().clone();
        Ok(names
            .iter()
            .map(|n| {
                let t = now.saturating_duration_since(forced[n]).as_millis() as u64;
                Described::Found(self.rollouts[n].state("ours", 0, t))
            })
            .collect())
    }

    async fn force_deploy(&self, _account: &Account, s: &ServiceRef) -> Result<Forced, AwsError> {
        self.forced_at
            .lock()
            .unwrap()
            .insert(s.service.as_str().to_string(), Instant::now());
        Ok(Forced {
            id: DeploymentId::from("ours"),
            created: Some(base()),
        })
    }
}

fn ms(max: u64) -> impl Strategy<Value = u64> {
    prop_oneof![0..5_000u64, 0..60_000u64, 0..max]
}

/// Rollouts of 1 s to 30 min: tasks started and drained in any order, lags before the old
/// deployment leaves the list and before COMPLETED, stalls, rollbacks, and deployments
/// someone else forces.
fn rollout() -> impl Strategy<Value = Rollout> {
    let simple = (1usize..5).prop_flat_map(|n| {
        (
            prop::collection::vec(ms(1_800_000), n),
            prop::collection::vec(ms(1_800_000), n),
            0..20_000u64,
            0..20_000u64,
            prop::option::weighted(0.1, 0..1_800_000u64),
            prop::bool::weighted(0.1),
        )
            .prop_map(
                |(starts, drains, list_lag, complete_lag, rollback_at, stall)| {
                    let mut starts = starts;
                    if stall {
                        starts[0] = NEVER;
                    }
                    Rollout {
                        starts,
                        drains,
                        list_lag,
                        complete_lag,
                        rollback_at,
                        superseded: None,
                    }
                },
            )
    });
    (
        simple.clone(),
        prop::option::weighted(0.15, (0..600_000u64, simple)),
    )
        .prop_map(|(mut r, sup)| {
            r.superseded = sup.map(|(x, then)| (x, Box::new(then)));
            r
        })
}

fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

fn coordinator(ecs: Timelines) -> (Arc<Timelines>, Coordinator<Timelines>) {
    let ecs = Arc::new(ecs);
    let c = Coordinator::new(
        ecs.clone(),
        Duration::ZERO,
        Duration::from_secs(30),
        Arc::new(NoTelemetry),
    );
    (ecs, c)
}

/// The waiter's calls by `t` ms after its start, if it stops at `stop` ms.
fn waiter_calls(t: u64, stop: Option<u64>) -> u64 {
    let period = WAITER_PERIOD.as_millis() as u64;
    let t = stop.map_or(t, |s| t.min(s));
    1 + t / period
}

const TIMEOUT: Duration = Duration::from_secs(40 * 60);

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// On every rollout: the same verdict as the waiter's schedule, seen no later than it
    /// would see it, and never more DescribeServices calls than it by the same moment.
    #[test]
    fn never_later_and_never_more_calls_than_the_cli_waiter(r in rollout()) {
        let expected = r.waiter(TIMEOUT);
        let (ecs, c) = coordinator(Timelines {
            rollouts: [("api".to_string(), r.clone())].into(),
            ..Timelines::default()
        });
        let s = svc("prod", "api");
        let (verdict, took) = paused().block_on(async {
            let t0 = Instant::now();
            let v = c.redeploy_and_wait(&Account::default(), std::slice::from_ref(&s), TIMEOUT, &Quiet).await;
            (v[&s].clone(), t0.elapsed())
        });
        let took = took.as_millis() as u64;
        match expected {
            Some((when, label)) => {
                prop_assert_eq!(verdict.label(), label, "{:?}", verdict);
                prop_assert!(took <= when, "seen at {} ms, the waiter at {} ms", took, when);
            }
            None => {
                prop_assert_eq!(verdict.label(), "stalled");
                prop_assert_eq!(took, TIMEOUT.as_millis() as u64);
            }
        }
        let t0 = ecs.forced_at.lock().unwrap()["api"];
        let calls = ecs.calls.lock().unwrap();
        for (i, (at, _)) in calls.iter().enumerate() {
            let t = at.saturating_duration_since(t0).as_millis() as u64;
            let waiter = waiter_calls(t, expected.map(|e| e.0));
            prop_assert!((i as u64) < waiter, "call {} at {} ms: the waiter had made {}", i + 1, t, waiter);
        }
    }

}

proptest! {
    // Each case runs up to 14 rollouts of up to 40 minutes (paused time, but every poll
    // is real work): fewer cases keep the suite fast.
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// Several services of one cluster forced at different moments: each rollout is seen
    /// no later than its own waiter would, with no more calls in all than their waiters
    /// together by the same moment, and each call lists each service at most once.
    #[test]
    fn several_rollouts_on_one_cluster_share_calls(
        rs in prop::collection::vec((0..40_000u64, rollout()), 1..14)
    ) {
        let names: Vec<String> = (0..rs.len()).map(|i| format!("svc{i}")).collect();
        let (ecs, c) = coordinator(Timelines {
            rollouts: names.iter().cloned().zip(rs.iter().map(|(_, r)| r.clone())).collect(),
            ..Timelines::default()
        });
        let results = paused().block_on(async {
            let jobs = names.iter().zip(&rs).map(|(n, (offset, _))| {
                let c = c.clone();
                let s = svc("prod", n);
                async move {
                    tokio::time::sleep(Duration::from_millis(*offset)).await;
                    let t0 = Instant::now();
                    let v = c.redeploy_and_wait(&Account::default(), std::slice::from_ref(&s), TIMEOUT, &Quiet).await;
                    (v[&s].clone(), t0.elapsed().as_millis() as u64)
                }
            });
            futures::future::join_all(jobs).await
        });
        let forced = ecs.forced_at.lock().unwrap().clone();
        let mut stops = Vec::new();
        for ((n, (_, r)), (verdict, took)) in names.iter().zip(&rs).zip(&results) {
            let expected = r.waiter(TIMEOUT);
            match expected {
                Some((when, label)) => {
                    prop_assert_eq!(verdict.label(), label, "{}: {:?}", n, verdict);
                    prop_assert!(*took <= when, "{}: seen at {} ms, its waiter at {} ms", n, took, when);
                }
                None => prop_assert_eq!(verdict.label(), "stalled", "{}", n),
            }
            stops.push((forced[n], expected.map(|e| e.0)));
        }
        let calls = ecs.calls.lock().unwrap();
        for (i, (at, listed)) in calls.iter().enumerate() {
            let mut sorted = listed.clone();
            sorted.sort();
            sorted.dedup();
            prop_assert_eq!(sorted.len(), listed.len());
            prop_assert!(listed.len() <= 10);
            let waiters: u64 = stops
                .iter()
                .filter(|(t0, _)| t0 <= at)
                .map(|(t0, stop)| waiter_calls(at.saturating_duration_since(*t0).as_millis() as u64, *stop))
                .sum();
            prop_assert!((i as u64) < waiters, "call {}: the waiters had made {}", i + 1, waiters);
        }
    }
}

/// Two rotations of one service within the coalescing window share one deployment and
/// one verdict; a third, after the window, forces its own.
#[test]
fn requests_within_the_window_share_one_deployment() {
    let clock = ManualClock::new(at("2030-01-01T00:00:00Z"));
    let ecs = FakeEcs::new(&clock, &Sequence::default());
    ecs.add_service(
        "prod",
        "api",
        2,
        Behaviour::Healthy {
            start: Duration::from_secs(20),
            drain: Duration::from_secs(5),
        },
    );
    let ecs = Arc::new(ecs);
    let c = Coordinator::new(
        ecs.clone(),
        Duration::from_secs(3),
        Duration::from_secs(30),
        Arc::new(NoTelemetry),
    );
    let s = svc("prod", "api");
    let verdicts = paused().block_on(async {
        let one = |delay: u64| {
            let (c, s) = (c.clone(), s.clone());
            async move {
                tokio::time::sleep(Duration::from_secs(delay)).await;
                c.redeploy_and_wait(
                    &Account::default(),
                    std::slice::from_ref(&s),
                    Duration::from_secs(600),
                    &Quiet,
                )
                .await[&s]
                    .clone()
            }
        };
        futures::future::join3(one(0), one(2), one(4)).await
    });
    assert_eq!(
        verdicts,
        (
            ServiceVerdict::Stable,
            ServiceVerdict::Stable,
            ServiceVerdict::Stable
        )
    );
    assert_eq!(ecs.forced(&s).len(), 2, "{:?}", ecs.forced(&s));
}

/// ECS's first answer after the force, from a replica that has not seen it yet: the
/// service as it was, or (`failed_event`) without our deployment but with an event
/// saying it failed.
struct StaleOnce {
    inner: FakeEcs,
    stale: Mutex<bool>,
    failed_event: bool,
}

impl Deployer for StaleOnce {
    async fn describe(
        &self,
        account: &Account,
        cluster: &ClusterName,
        services: &[ServiceName],
    ) -> Result<Vec<Described>, AwsError> {
        let stale = std::mem::take(&mut *self.stale.lock().unwrap());
        let mut fresh = self.inner.describe(account, cluster, services).await?;
        if stale {
            if let Some(Described::Found(st)) = fresh.first_mut() {
                let ours = st.primary().map(|p| p.id.clone()).unwrap();
                st.deployments.retain(|d| d.id != ours);
                st.events.retain(|e| !names_deployment(e, &ours));
                if let Some(d) = st.deployments.first_mut() {
                    d.status = "PRIMARY".into();
                }
                if self.failed_event {
                    st.events.insert(
                        0,
                        format!("(service api) (deployment {ours}) deployment failed: tasks failed to start."),
                    );
                }
            }
        }
        Ok(fresh)
    }
    async fn force_deploy(&self, account: &Account, s: &ServiceRef) -> Result<Forced, AwsError> {
        self.inner.force_deploy(account, s).await
    }
}

fn stale_once(failed_event: bool) -> (ServiceVerdict, Duration) {
    let clock = ManualClock::new(at("2030-01-01T00:00:00Z"));
    let ecs = FakeEcs::new(&clock, &Sequence::default());
    ecs.add_service(
        "prod",
        "api",
        2,
        Behaviour::Healthy {
            start: Duration::from_secs(30),
            drain: Duration::from_secs(10),
        },
    );
    let d = Arc::new(StaleOnce {
        inner: ecs,
        stale: Mutex::new(true),
        failed_event,
    });
    let c = Coordinator::new(
        d,
        Duration::ZERO,
        Duration::from_secs(30),
        Arc::new(NoTelemetry),
    );
    let s = svc("prod", "api");
    paused().block_on(async {
        let t0 = Instant::now();
        let v = c
            .redeploy_and_wait(
                &Account::default(),
                std::slice::from_ref(&s),
                Duration::from_secs(600),
                &Quiet,
            )
            .await;
        (v[&s].clone(), t0.elapsed())
    })
}

/// ECS is eventually consistent: a DescribeServices right after UpdateService may still
/// show the service as it was. Our deployment missing from that answer is not a rollback.
#[test]
fn a_stale_first_describe_is_not_a_rollback() {
    assert_eq!(stale_once(false).0, ServiceVerdict::Stable);
}

/// ECS's answer already names our deployment as failed (an event), without listing it
/// any more: no stale read can hold that event, so it is a rollback at once, not after
/// the visibility grace.
#[test]
fn a_rollback_with_an_event_naming_ours_is_not_held_by_the_visibility_grace() {
    let (v, took) = stale_once(true);
    assert!(matches!(v, ServiceVerdict::RolledBack { .. }), "{v:?}");
    assert!(took <= WAITER_PERIOD, "{took:?}");
}
