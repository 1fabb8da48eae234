//! The value read back before `test` must be the value written: a pending version whose
//! content changed under us (another writer, a store bug) is never tested or made current.

use rotator_core::rotation::store::{AWSCURRENT, AWSPENDING};
use rotator_core::rotation::{Engine, Quiet, RotateOptions, RotationError, Step};
use rotator_test_kit::{
    at, FakeEcs, FakeStore, FakeTarget, Hook, ManualClock, SecretBuilder, Sequence,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[tokio::test(start_paused = true)]
async fn a_pending_value_changed_before_the_read_back_is_a_mismatch() {
    let clock = ManualClock::new(at("2026-03-03T02:00:00Z"));
    let seq = Sequence::default();
    let store = FakeStore::new(&clock, &seq);
    store.create_secret("app/db", "initial-value");
    let original = store.holder("app/db", AWSCURRENT).unwrap();
    let target = FakeTarget::new();
    let cfg = SecretBuilder::new("db", "app/db")
        .target(target.target())
        .build();
    // Right before the read-back, the pending version's content changes (same version id).
    let tampered = Arc::new(AtomicBool::new(false));
    let hook = {
        let (store, tampered) = (store.clone(), tampered.clone());
        move |op: &'static str| {
            if op == "GetSecretValue" && !tampered.swap(true, Ordering::SeqCst) {
                store.edit("app/db", |s| {
                    for v in &mut s.versions {
                        if v.stages.iter().any(|st| st == AWSPENDING) {
                            v.value = "someone-else's-value".into();
                        }
                    }
                });
            }
        }
    };
    let engine = Engine::new(
        Hook::new(store.clone(), hook),
        FakeEcs::new(&clock, &seq),
        Arc::new(clock.clone()),
    );
    let e = engine
        .rotate(&cfg, RotateOptions::default(), &Quiet)
        .await
        .expect_err("the read-back differs");
    assert!(tampered.load(Ordering::SeqCst), "no read-back happened");
    assert!(matches!(e, RotationError::Mismatch), "{e}");
    assert_eq!(target.count(Step::Test), 0, "a value not ours was tested");
    assert_eq!(store.holder("app/db", AWSCURRENT), Some(original));
}
