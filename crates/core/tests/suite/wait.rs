//! The wait for stability against ECS as AWS documents it, where our simulators differ:
//! eventually consistent reads, and stable timeouts longer than the CLI waiter's ten
//! minutes. Found by adversarial review (issue 14).

use rotator_core::error::AwsError;
use rotator_core::ids::{Account, ClusterName, ServiceName, ServiceRef};
use rotator_core::rotation::deploy::{Deployer, Described, Forced, ServiceState};
use rotator_core::rotation::wait::{wait_stable, ServiceVerdict};
use rotator_core::rotation::Quiet;
use rotator_test_kit::{at, svc, Behaviour, FakeEcs, ManualClock, Sequence};
use std::sync::Mutex;
use std::time::Duration;

fn ecs_with(start: u64, drain: u64) -> FakeEcs {
    let clock = ManualClock::new(at("2030-01-01T00:00:00Z"));
    let ecs = FakeEcs::new(&clock, &Sequence::default());
    ecs.add_service(
        "prod",
        "api",
        2,
        Behaviour::Healthy {
            start: Duration::from_secs(start),
            drain: Duration::from_secs(drain),
        },
    );
    ecs
}

/// Seconds between a healthy rollout's completion (all new tasks at 180 s, old ones
/// drained 5 s later) and the wait reporting it stable.
async fn late_by(timeout: Duration) -> f64 {
    let ecs = ecs_with(180, 5);
    let s = svc("prod", "api");
    let t0 = tokio::time::Instant::now();
    let forced = ecs.force_deploy(&Account::default(), &s).await.unwrap();
    let v = wait_stable(
        &ecs,
        &Account::default(),
        &[(s.clone(), forced)],
        timeout,
        &Quiet,
    )
    .await;
    assert_eq!(v.get(&s), Some(&ServiceVerdict::Stable));
    t0.elapsed().as_secs_f64() - 185.0
}

/// The fast poll once only old tasks drain must work with the default stable timeout
/// (20m): it was overridden by spreading the waiter's 40 polls over any timeout above ten
/// minutes (every 30 s, about 27 s late here). Longer timeouts spread the slow polls
/// further (40 calls at most), so a drain is noticed later there.
#[tokio::test(start_paused = true)]
async fn draining_is_polled_fast_with_any_stable_timeout() {
    for minutes in [5, 10, 20] {
        let late = late_by(Duration::from_secs(minutes * 60)).await;
        assert!(
            late <= 3.5,
            "stable_timeout = {minutes}m: the completed rollout was seen {late:.2}s late"
        );
    }
}

/// ECS's first answer after the force, from a replica that has not seen it yet.
struct StaleOnce {
    inner: FakeEcs,
    stale: Mutex<Option<ServiceState>>,
}

impl Deployer for StaleOnce {
    async fn describe(
        &self,
        account: &Account,
        cluster: &ClusterName,
        services: &[ServiceName],
    ) -> Result<Vec<Described>, AwsError> {
        let stale = self.stale.lock().unwrap().take();
        match stale {
            Some(s) => Ok(vec![Described::Found(s)]),
            None => self.inner.describe(account, cluster, services).await,
        }
    }
    async fn force_deploy(&self, account: &Account, s: &ServiceRef) -> Result<Forced, AwsError> {
        self.inner.force_deploy(account, s).await
    }
}

/// ECS is eventually consistent: a DescribeServices right after UpdateService may still
/// show the service as it was. Our deployment missing from that answer is not a rollback.
#[tokio::test(start_paused = true)]
async fn a_stale_first_describe_is_not_a_rollback() {
    let ecs = ecs_with(30, 10);
    let s = svc("prod", "api");
    let d = StaleOnce {
        stale: Mutex::new(ecs.service(&s)),
        inner: ecs,
    };
    let forced = d.force_deploy(&Account::default(), &s).await.unwrap();
    let v = wait_stable(
        &d,
        &Account::default(),
        &[(s.clone(), forced)],
        Duration::from_secs(600),
        &Quiet,
    )
    .await;
    assert_eq!(v.get(&s), Some(&ServiceVerdict::Stable));
}

/// ECS's answer already names our deployment as failed (an event), without listing it
/// any more: no stale read can hold that event, so it is a rollback at once, not after
/// the visibility grace (with a short stable timeout, the grace would make it a stall).
#[tokio::test(start_paused = true)]
async fn a_rollback_with_an_event_naming_ours_is_not_held_by_the_visibility_grace() {
    let ecs = ecs_with(30, 10);
    let s = svc("prod", "api");
    let forced = ecs.force_deploy(&Account::default(), &s).await.unwrap();
    let mut before = ecs.service(&s).unwrap();
    before.deployments.retain(|d| d.id != forced.id);
    before.events.insert(
        0,
        format!(
            "(service api) (deployment {}) deployment failed: tasks failed to start.",
            forced.id
        ),
    );
    let d = StaleOnce {
        stale: Mutex::new(Some(before)),
        inner: ecs,
    };
    let t0 = tokio::time::Instant::now();
    let v = wait_stable(
        &d,
        &Account::default(),
        &[(s.clone(), forced)],
        Duration::from_secs(600),
        &Quiet,
    )
    .await;
    assert!(
        matches!(v.get(&s), Some(ServiceVerdict::RolledBack { .. })),
        "{v:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
}

/// Twenty services whose drains start 300 s apart inside a 2 h timeout: each drain gets
/// fast polls, but not so many that the waiter's 40 run out before the last rollout
/// completes (it would then be reported stalled).
#[tokio::test(start_paused = true)]
async fn drains_one_after_another_leave_polls_for_the_last_one() {
    let clock = ManualClock::new(at("2030-01-01T00:00:00Z"));
    let ecs = FakeEcs::new(&clock, &Sequence::default());
    let mut ours = Vec::new();
    for i in 0..20u64 {
        let name = format!("svc{i}");
        ecs.add_service(
            "prod",
            &name,
            2,
            Behaviour::Healthy {
                start: Duration::from_secs(40 + 300 * i),
                drain: Duration::from_secs(200),
            },
        );
        let s = svc("prod", &name);
        let forced = ecs.force_deploy(&Account::default(), &s).await.unwrap();
        ours.push((s, forced));
    }
    let v = wait_stable(
        &ecs,
        &Account::default(),
        &ours,
        Duration::from_secs(7200),
        &Quiet,
    )
    .await;
    let not_stable: Vec<_> = v
        .iter()
        .filter(|(_, v)| **v != ServiceVerdict::Stable)
        .map(|(s, v)| format!("{s}: {}", v.label()))
        .collect();
    assert!(not_stable.is_empty(), "{not_stable:?}");
    let polls = ecs.describe_calls().len();
    assert!(
        polls <= 40 * 2,
        "{polls} DescribeServices calls (10 services per call)"
    );
}
