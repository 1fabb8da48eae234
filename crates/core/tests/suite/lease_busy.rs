//! With `[ha]`, a secret whose lease another replica holds is tried again later: not
//! dropped, not counted as a failure.

use chrono::{DateTime, SecondsFormat, Utc};
use rotator_core::clock::Clock;
use rotator_core::config::{AwsConfig, Config, DaemonConfig};
use rotator_core::ha::Ha;
use rotator_core::rotation::lease::{Leases, Taken};
use rotator_core::rotation::store::TAG_LAST_ROTATED;
use rotator_core::rotation::Engine;
use rotator_core::scheduler::{Health, Scheduler};
use rotator_test_kit::leases::MemoryLeases;
use rotator_test_kit::{at, FakeEcs, FakeStore, ManualClock, Recorder, SecretBuilder, Sequence};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const DAY: Duration = Duration::from_secs(86_400);
const TTL: Duration = Duration::from_secs(60);

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[tokio::test(start_paused = true)]
async fn a_secret_whose_lease_is_busy_is_rotated_once_the_other_replica_lets_go() {
    let clock = ManualClock::new(at("2026-03-03T02:00:00Z"));
    let seq = Sequence::default();
    let store = FakeStore::new(&clock, &seq);
    store.create_secret("app/db", "initial-value");
    let tagged = rfc(clock.now() - chrono::Duration::days(40));
    store.edit("app/db", |s| {
        s.tags.insert(TAG_LAST_ROTATED.into(), tagged);
    });
    let table = MemoryLeases::new();
    // Another replica holds this secret's lease (the key is its secret_id).
    let other = Leases::new(
        Arc::new(table.clone()),
        "replica-b",
        TTL,
        Arc::new(clock.clone()),
    );
    let Ok(Taken::Ours(held)) = other.acquire("app/db").await else {
        panic!("replica-b could not take the lease");
    };
    let ours = Leases::new(
        Arc::new(table.clone()),
        "replica-a",
        TTL,
        Arc::new(clock.clone()),
    );
    let rec = Recorder::new();
    let engine = Arc::new(
        Engine::new(
            store.clone(),
            FakeEcs::new(&clock, &seq),
            Arc::new(clock.clone()),
        )
        .with_telemetry(rec.sink()),
    );
    let cfg = Config {
        daemon: DaemonConfig::default(),
        aws: AwsConfig::default(),
        alibaba: Default::default(),
        ibm: Default::default(),
        ha: Default::default(),
        events: Default::default(),
        secrets: vec![SecretBuilder::new("db", "app/db")
            .every(30 * DAY)
            .build()
            .into()],
        groups: Vec::new(),
        notify: Vec::new(),
        files: vec![],
    };
    let sched = Scheduler::new(
        engine,
        Arc::new(clock.clone()),
        &cfg,
        Arc::new(Health::default()),
    )
    .with_ha(Some(Arc::new(Ha::new(ours))));
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(sched.run(rx));

    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(
        store.count_ok("PutSecretValue"),
        0,
        "rotated under another replica's lease"
    );
    let state = rec.state("db");
    assert!(!state.in_progress && !state.failing, "{state:?}");
    assert_eq!(rec.running(), 0, "a busy lease counted as running");
    // Tried once; the next try waits half to three quarters of a ttl.
    assert_eq!(rec.lease_contended("db"), 1);

    // The other replica lets go; the next try (about half a ttl later) rotates.
    held.release().await.expect("release");
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(store.count_ok("PutSecretValue"), 1, "never tried again");
    assert!(!rec.state("db").in_progress);
    drop(tx);
}
