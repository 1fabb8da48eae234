//! Many rotations redeploying one shared service through one engine (its deploy
//! coordinator): one or two deployments, not one per secret, and every verdict right.

use crate::world::{healthy, opts, t0, CLUSTER};
use rotator_core::rotation::store::AWSCURRENT;
use rotator_core::rotation::{Engine, Outcome, Quiet};
use rotator_test_kit::{svc, Behaviour, FakeEcs, FakeStore, ManualClock, SecretBuilder, Sequence};
use std::sync::Arc;
use std::time::Duration;

const SECRETS: usize = 50;

fn world(api: Behaviour) -> (FakeStore, FakeEcs, Engine<FakeStore, FakeEcs>) {
    let clock = ManualClock::new(t0());
    let seq = Sequence::default();
    let store = FakeStore::new(&clock, &seq);
    let ecs = FakeEcs::new(&clock, &seq);
    ecs.add_service(CLUSTER, "api", 2, api);
    for i in 0..SECRETS {
        store.create_secret(&format!("app/db-{i}"), "an-original-value-9dK2!x");
    }
    let engine = Engine::new(store.clone(), ecs.clone(), Arc::new(clock));
    (store, ecs, engine)
}

/// 50 secrets due together (their rotations reach the redeploy over five seconds): the
/// shared service is forced once or twice, and each rotation succeeds with its own value
/// current.
#[tokio::test(start_paused = true)]
async fn fifty_secrets_of_one_service_share_one_or_two_deployments() {
    let (store, ecs, engine) = world(healthy());
    let cfgs: Vec<_> = (0..SECRETS)
        .map(|i| {
            SecretBuilder::new(&format!("db-{i}"), &format!("app/db-{i}"))
                .redeploy(CLUSTER, &["api"])
                .build()
        })
        .collect();
    let before: Vec<_> = (0..SECRETS)
        .map(|i| store.holder(&format!("app/db-{i}"), AWSCURRENT))
        .collect();
    let runs = cfgs.iter().enumerate().map(|(i, cfg)| {
        let engine = &engine;
        async move {
            tokio::time::sleep(Duration::from_millis(100 * i as u64)).await;
            engine.rotate(cfg, opts(), &Quiet).await
        }
    });
    let reports = futures::future::join_all(runs).await;
    for (i, r) in reports.iter().enumerate() {
        let r = r.as_ref().unwrap_or_else(|e| panic!("db-{i}: {e}"));
        assert_eq!(r.outcome, Outcome::Success, "db-{i}");
        assert_ne!(
            store.holder(&format!("app/db-{i}"), AWSCURRENT),
            before[i],
            "db-{i}"
        );
    }
    let forced = ecs.forced(&svc(CLUSTER, "api")).len();
    assert!(
        (1..=2).contains(&forced),
        "{forced} deployments forced for {SECRETS} secrets"
    );
}

/// The shared deployment rolls back: every rotation that waited on it fails with the
/// rollback, none is told stable.
#[tokio::test(start_paused = true)]
async fn a_shared_deployment_that_rolls_back_fails_every_rotation_on_it() {
    let (_store, ecs, engine) = world(Behaviour::Failing {
        start: Duration::from_secs(30),
    });
    let cfgs: Vec<_> = (0..5)
        .map(|i| {
            SecretBuilder::new(&format!("db-{i}"), &format!("app/db-{i}"))
                .redeploy(CLUSTER, &["api"])
                .build()
        })
        .collect();
    let runs = cfgs.iter().map(|cfg| engine.rotate(cfg, opts(), &Quiet));
    for r in futures::future::join_all(runs).await {
        let e = r.expect_err("rolled back");
        assert_eq!(e.outcome(), Outcome::RolledBack, "{e}");
    }
    assert_eq!(ecs.forced(&svc(CLUSTER, "api")).len(), 1);
}
