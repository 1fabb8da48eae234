//! Replicas of the daemon on one configuration, without a lease, interleaved at chosen
//! calls (the simulation draws interleavings at random; these pin the ones it found).

use chrono::{DateTime, SecondsFormat, Utc};
use rotator_core::clock::Clock;
use rotator_core::config::{AwsConfig, Config, DaemonConfig};
use rotator_core::daemon::{self, Ports};
use rotator_core::ids::VersionId;
use rotator_core::rotation::store::{AWSCURRENT, TAG_DEPLOYED_VERSION, TAG_LAST_ROTATED};
use rotator_core::rotation::{token, Engine};
use rotator_core::scheduler::Health;
use rotator_test_kit::{
    at, Behaviour, FakeEcs, FakeStore, Hook, ManualClock, SecretBuilder, Sequence,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Replica B found the secret due as a resume (A's value current, its consumers not yet
/// confirmed); A then finished before B's rotation read the secret. B must see that the
/// resume is done — not rotate the value A just made current (a third version, and the
/// consumers restarted twice in one due slot).
#[tokio::test(start_paused = true)]
async fn a_resume_another_replica_finished_first_does_not_rotate_again() {
    let clock = ManualClock::new(at("2026-03-03T02:00:00Z"));
    let seq = Sequence::default();
    let store = FakeStore::new(&clock, &seq);
    let ecs = FakeEcs::new(&clock, &seq);
    ecs.add_service(
        "prod",
        "api",
        1,
        Behaviour::Healthy {
            start: Duration::from_secs(20),
            drain: Duration::from_secs(10),
        },
    );
    let arn = store.create_secret("app/raced", "initial-value");
    let old = store.holder("app/raced", AWSCURRENT).unwrap();
    let tagged = rfc(clock.now() - chrono::Duration::days(40));
    store.edit("app/raced", |s| {
        s.tags.insert(TAG_LAST_ROTATED.into(), tagged);
    });
    // Replica A's rotation: its value is current, the redeploy not confirmed yet.
    let new = token::token(&arn, &old, 0);
    store.seed_version(
        "app/raced",
        new.as_str(),
        "value-of-replica-a",
        &[AWSCURRENT],
        clock.now(),
    );

    // A finishes (deployed tag, last-rotated now) right before B's rotation reads the
    // secret: B's first DescribeSecret after its due-time read.
    let describes = Arc::new(AtomicUsize::new(0));
    let finish = {
        let (store, clock, new, describes) =
            (store.clone(), clock.clone(), new.clone(), describes.clone());
        move |op: &'static str| {
            if op == "DescribeSecret" && describes.fetch_add(1, Ordering::SeqCst) == 0 {
                let now = rfc(clock.now());
                store.edit("app/raced", |s| {
                    s.tags
                        .insert(TAG_DEPLOYED_VERSION.into(), new.as_str().to_owned());
                    s.tags.insert(TAG_LAST_ROTATED.into(), now);
                });
            }
        }
    };
    let engine = Arc::new(Engine::new(
        Hook::new(store.clone(), finish),
        ecs.clone(),
        Arc::new(clock.clone()),
    ));
    let cfg = Config {
        daemon: DaemonConfig::default(),
        aws: AwsConfig::default(),
        alibaba: Default::default(),
        ibm: Default::default(),
        ha: Default::default(),
        events: Default::default(),
        secrets: vec![SecretBuilder::new("raced", "app/raced")
            .every(30 * DAY)
            .redeploy("prod", &["api"])
            .build()
            .into()],
        groups: Vec::new(),
        notify: Vec::new(),
        files: vec![],
    };
    let (_reload_tx, reloads) = tokio::sync::mpsc::channel(1);
    let ports = Ports::new(engine, None, Arc::new(Health::default()));
    let run = daemon::run(cfg, ports, std::future::pending(), reloads);
    let _ = tokio::time::timeout(Duration::from_secs(3600), run).await;

    assert!(
        describes.load(Ordering::SeqCst) > 0,
        "B never started its resume"
    );
    assert_eq!(
        store.count_ok("PutSecretValue"),
        0,
        "B made another version"
    );
    assert_eq!(
        store.holder("app/raced", AWSCURRENT),
        Some(VersionId::from(new.as_str())),
        "A's value is no longer current"
    );
    assert!(
        ecs.force_calls().is_empty(),
        "B redeployed consumers A had already confirmed: {:?}",
        ecs.force_calls()
    );
}
