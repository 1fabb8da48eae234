//! Secrets of three stores in one engine (issue 17): each call reaches the store its
//! secret names, a store that is not set up fails only its own secrets, and
//! `describe_many` answers every input under its own index.

use rotator_core::error::ErrorClass;
use rotator_core::ids::{StoreKind, StoreParts, StoreRoute};
use rotator_core::rotation::router::StoreRouter;
use rotator_core::rotation::store::{describe_all, AWSCURRENT, AWSPREVIOUS};
use rotator_core::rotation::{Engine, Outcome, Quiet, RotateOptions, RotationError};
use rotator_test_kit::{at, secret_ref, FakeEcs, FakeStore, ManualClock, SecretBuilder, Sequence};
use std::sync::Arc;

fn route(kind: StoreKind) -> StoreRoute {
    StoreRoute::new(StoreParts {
        kind,
        region: None,
        endpoint: None,
        role_arn: None,
    })
}

#[tokio::test(start_paused = true)]
async fn each_secret_rotates_in_the_store_it_names() {
    let clock = ManualClock::new(at("2026-03-03T02:00:00Z"));
    let seq = Sequence::default();
    let (aws, alibaba) = (FakeStore::new(&clock, &seq), FakeStore::new(&clock, &seq));
    // The same name in two stores: two different secrets.
    aws.create_secret("app/db", "aws-value");
    alibaba.create_secret("app/db", "alibaba-value");
    let router = StoreRouter {
        aws: aws.clone(),
        alibaba: Some(alibaba.clone()),
        ibm: None::<FakeStore>,
    };
    let engine = Engine::new(router, FakeEcs::new(&clock, &seq), Arc::new(clock.clone()));
    let mut cfg = SecretBuilder::new("db-cn", "app/db").build();
    cfg.secret.store = route(StoreKind::Alibaba);

    let report = engine
        .rotate(&cfg, RotateOptions::default(), &Quiet)
        .await
        .expect("rotates");
    assert_eq!(report.outcome, Outcome::Success);
    let current = alibaba.holder("app/db", AWSCURRENT).unwrap();
    assert_ne!(alibaba.value_of("app/db", &current), "alibaba-value");
    assert!(alibaba.holder("app/db", AWSPREVIOUS).is_some());
    // The AWS secret of the same name was not touched.
    assert_eq!(aws.writes_ok(), 0);
    let aws_current = aws.holder("app/db", AWSCURRENT).unwrap();
    assert_eq!(aws.value_of("app/db", &aws_current), "aws-value");

    // A store that is not set up fails its own secrets with a setup error naming it.
    let mut ibm_cfg = SecretBuilder::new("db-ibm", "app/db").build();
    ibm_cfg.secret.store = route(StoreKind::Ibm);
    let err = engine
        .rotate(&ibm_cfg, RotateOptions::default(), &Quiet)
        .await
        .expect_err("no IBM store");
    match err {
        RotationError::Aws { source, .. } => {
            assert_eq!(source.class, ErrorClass::Setup);
            assert!(
                source.to_string().contains("ibm store is not set up"),
                "{source}"
            );
        }
        other => panic!("unexpected error: {other}"),
    }
}

#[tokio::test(start_paused = true)]
async fn describe_many_answers_each_input_under_its_index() {
    let clock = ManualClock::new(at("2026-03-03T02:00:00Z"));
    let seq = Sequence::default();
    let (aws, alibaba) = (FakeStore::new(&clock, &seq), FakeStore::new(&clock, &seq));
    aws.create_secret("a", "v");
    alibaba.create_secret("b", "v");
    let router = StoreRouter {
        aws,
        alibaba: Some(alibaba),
        ibm: None::<FakeStore>,
    };
    let mut refs = vec![
        secret_ref("b"),
        secret_ref("a"),
        secret_ref("c"),
        secret_ref("a"),
    ];
    refs[0].store = route(StoreKind::Alibaba);
    refs[2].store = route(StoreKind::Ibm);
    let answers = describe_all(&router, &refs).await;
    assert_eq!(answers[0].as_ref().unwrap().name, "b");
    assert_eq!(answers[1].as_ref().unwrap().name, "a");
    assert_eq!(answers[2].as_ref().unwrap_err().class, ErrorClass::Setup);
    assert_eq!(answers[3].as_ref().unwrap().name, "a");
}
