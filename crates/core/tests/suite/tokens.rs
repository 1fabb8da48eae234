//! Client request tokens over many refused values for one AWSCURRENT: the supply never
//! runs out, and a retry does not walk past every earlier attempt's token.

use rotator_core::rotation::store::{AWSCURRENT, TAG_PENDING_VERSION};
use rotator_core::rotation::token::{token, MAX_TOKEN_ATTEMPTS};
use rotator_core::rotation::{Engine, Outcome, Quiet, RotateOptions, RotationError, Step};
use rotator_test_kit::{at, FakeEcs, FakeStore, FakeTarget, ManualClock, SecretBuilder, Sequence};
use std::sync::Arc;

/// A database down for days (hourly retries, reloads, restarts) refuses far more than 64
/// values for the same AWSCURRENT. Each retry made a fresh value under the next numbered
/// token, and after 64 every later run failed with "no free client request token" — for
/// good, even once the database was back (adversarial review, issue 14).
#[tokio::test(start_paused = true)]
async fn a_hundred_refused_values_do_not_exhaust_the_tokens() {
    let clock = ManualClock::new(at("2026-03-03T02:00:00Z"));
    let seq = Sequence::default();
    let store = FakeStore::new(&clock, &seq);
    let ecs = FakeEcs::new(&clock, &seq);
    store.create_secret("app/db", "initial-value");
    let original = store.holder("app/db", AWSCURRENT).unwrap();
    let target = FakeTarget::new();
    target.fail(Step::Test, "connection refused");
    let cfg = SecretBuilder::new("db", "app/db")
        .target(target.target())
        .build();
    let engine = Engine::new(store.clone(), ecs.clone(), Arc::new(clock.clone()));

    // The scheduler's sequence: every retry after a target failure asks for a fresh value.
    let mut fresh = false;
    for run in 0..100 {
        let puts_before = store.op_count("PutSecretValue");
        let r = engine
            .rotate(
                &cfg,
                RotateOptions {
                    fresh,
                    ..Default::default()
                },
                &Quiet,
            )
            .await;
        assert!(
            matches!(r, Err(RotationError::Target { .. })),
            "run {run}: {:?}",
            r.map(|r| r.outcome)
        );
        // One put per run: the next free token is known, not found by trying each.
        assert_eq!(
            store.op_count("PutSecretValue") - puts_before,
            1,
            "run {run}: tokens tried one by one"
        );
        fresh = true;
    }

    target.succeed(Step::Test);
    let report = engine
        .rotate(
            &cfg,
            RotateOptions {
                fresh,
                ..Default::default()
            },
            &Quiet,
        )
        .await
        .expect("the target works again");
    assert_eq!(report.outcome, Outcome::Success);
    assert_ne!(store.holder("app/db", AWSCURRENT).unwrap(), original);
}

/// A tag writer names the last attempt the search covers in `pending-version`. The token
/// supply must not end there: a refused value later, the retry still gets a token, and
/// once the target works the rotation succeeds (adversarial review: it failed
/// "Exhausted" for good).
#[tokio::test(start_paused = true)]
async fn a_forged_pending_version_tag_cannot_end_the_token_supply() {
    let clock = ManualClock::new(at("2026-03-03T02:00:00Z"));
    let seq = Sequence::default();
    let store = FakeStore::new(&clock, &seq);
    let ecs = FakeEcs::new(&clock, &seq);
    let arn = store.create_secret("app/db", "initial-value");
    let original = store.holder("app/db", AWSCURRENT).unwrap();
    let forged = token(&arn, &original, MAX_TOKEN_ATTEMPTS - 1);
    store.edit("app/db", |s| {
        s.tags
            .insert(TAG_PENDING_VERSION.into(), forged.as_str().to_owned());
    });
    let target = FakeTarget::new();
    target.fail(Step::Test, "connection refused");
    let cfg = SecretBuilder::new("db", "app/db")
        .target(target.target())
        .build();
    let engine = Engine::new(store.clone(), ecs.clone(), Arc::new(clock.clone()));

    let r = engine.rotate(&cfg, RotateOptions::default(), &Quiet).await;
    assert!(matches!(r, Err(RotationError::Target { .. })), "run 1");
    // The fresh retry needs the attempt after the last one the search knows.
    let r = engine
        .rotate(
            &cfg,
            RotateOptions {
                fresh: true,
                ..Default::default()
            },
            &Quiet,
        )
        .await;
    assert!(
        matches!(r, Err(RotationError::Target { .. })),
        "run 2: {:?}",
        r.map(|r| r.outcome)
    );
    target.succeed(Step::Test);
    let r = engine
        .rotate(
            &cfg,
            RotateOptions {
                fresh: true,
                ..Default::default()
            },
            &Quiet,
        )
        .await;
    assert_eq!(
        r.map(|r| r.outcome).ok(),
        Some(Outcome::Success),
        "the target works again"
    );
}
