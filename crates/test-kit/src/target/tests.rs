//! The fake target's own rules, through the core's step functions (what the engine calls).

use super::*;
use crate::clock::{at, ManualClock, Sequence};
use crate::{FakeStore, SecretBuilder};
use rotator_core::config::SecretConfig;
use rotator_core::rotation::target::{self, TargetClients};
use tokio::time::Instant;

const VALUE: &str = "the-value-nobody-may-see-7Qx";

/// Runs `f` with what a target step gets from the engine, for a secret whose target is
/// `fake`.
async fn with_env<T>(fake: &FakeTarget, f: impl AsyncFnOnce(&TargetEnv<'_>) -> T) -> T {
    let clock = ManualClock::new(at("2026-03-03T02:00:00Z"));
    let store = FakeStore::new(&clock, &Sequence::default());
    let cfg: SecretConfig = SecretBuilder::new("s", "app/s")
        .target(fake.target())
        .build();
    let clients = TargetClients::default();
    let env = TargetEnv {
        cfg: &cfg,
        store: &store,
        clients: &clients,
        clock: &clock,
    };
    f(&env).await
}

fn value() -> SecretString {
    SecretString::from(VALUE)
}

#[tokio::test]
async fn every_step_succeeds_by_default_and_every_call_is_logged() {
    let fake = FakeTarget::new();
    let t = fake.target();
    assert_eq!(t.kind(), KIND);
    assert!(!target::has_revoke(&t));
    assert!(!target::makes_value(&t));
    assert!(target::has_revoke(
        &FakeTarget::new().with_revoke().target()
    ));
    with_env(&fake, async |env| {
        target::set(env, &value()).await.unwrap();
        target::test(env, &value()).await.unwrap();
        target::revoke(env, &value(), Some(&value())).await.unwrap();
        target::revoke(env, &value(), None).await.unwrap();
    })
    .await;
    let call = |step, previous| TargetCall {
        step,
        previous,
        ok: Some(true),
    };
    assert_eq!(
        fake.calls(),
        [
            call(Step::Set, false),
            call(Step::Test, false),
            call(Step::Revoke, true),
            call(Step::Revoke, false)
        ]
    );
    assert_eq!(fake.count(Step::Revoke), 2);
    assert_eq!(fake.count(Step::Set), 1);
}

#[tokio::test]
async fn a_step_fails_with_the_chosen_error_until_it_is_told_to_succeed() {
    let fake = FakeTarget::new();
    fake.fail(Step::Set, "refused by the fake");
    fake.fail_with(Step::Test, || TargetError::Other("custom".into()));
    with_env(&fake, async |env| {
        let e = target::set(env, &value()).await.unwrap_err();
        assert!(
            matches!(&e, TargetError::Kind { kind: KIND, message } if message == "refused by the fake"),
            "{e:?}"
        );
        assert_eq!(e.to_string(), "fake: refused by the fake");
        let e = target::test(env, &value()).await.unwrap_err();
        assert!(matches!(&e, TargetError::Other(m) if m == "custom"), "{e:?}");
        // Only the scripted steps fail.
        target::revoke(env, &value(), Some(&value())).await.unwrap();
        fake.succeed(Step::Set);
        target::set(env, &value()).await.unwrap();
        assert!(target::test(env, &value()).await.is_err());
    })
    .await;
    let ends: Vec<_> = fake.calls().iter().map(|c| (c.step, c.ok)).collect();
    assert_eq!(
        ends,
        [
            (Step::Set, Some(false)),
            (Step::Test, Some(false)),
            (Step::Revoke, Some(true)),
            (Step::Set, Some(true)),
            (Step::Test, Some(false)),
        ]
    );
    // The value is never kept: neither the fake nor its calls can show it.
    let shown = format!("{fake:?} {:?}", fake.target());
    assert!(!shown.contains(VALUE), "{shown}");
    assert!(
        shown.contains("set: succeeds") && shown.contains("test: fails"),
        "{shown}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_delayed_step_takes_its_time_and_a_hanging_one_never_answers() {
    let fake = FakeTarget::new();
    fake.delay(Step::Set, Duration::from_secs(7));
    fake.hang(Step::Test);
    with_env(&fake, async |env| {
        let began = Instant::now();
        target::set(env, &value()).await.unwrap();
        assert_eq!(began.elapsed(), Duration::from_secs(7));
        let r = tokio::time::timeout(Duration::from_secs(3600), target::test(env, &value())).await;
        assert!(r.is_err(), "the test step answered: {r:?}");
    })
    .await;
    let ends: Vec<_> = fake.calls().iter().map(|c| (c.step, c.ok)).collect();
    assert_eq!(ends, [(Step::Set, Some(true)), (Step::Test, None)]);
}

#[test]
#[should_panic(expected = "not finish")]
fn only_set_test_and_revoke_can_be_scripted() {
    FakeTarget::new().fail(Step::Finish, "no such step");
}
