//! The fault wrapper around each kind of port.

use super::*;
use crate::clock::{at, ManualClock, Sequence};
use crate::config::{secret_ref, svc};
use crate::errors::{access_denied, server_error, throttled, CRASH};
use crate::leases::MemoryLeases;
use crate::{Behaviour, FakeEcs, FakeIam, FakeStore};
use rotator_core::rotation::store::{AWSCURRENT, AWSPENDING, AWSPREVIOUS};

fn store() -> (FakeStore, FaultPlan, Faulty<FakeStore>) {
    let clock = ManualClock::new(at("2026-03-03T02:00:00Z"));
    let st = FakeStore::new(&clock, &Sequence::default());
    st.create_secret("s", "one");
    let plan = FaultPlan::new();
    let port = Faulty::new(st.clone(), &plan);
    (st, plan, port)
}

fn tok(n: u8) -> VersionId {
    VersionId::new(format!("{n:08}-1111-4111-8111-111111111111"))
}

#[tokio::test(start_paused = true)]
async fn queued_errors_fail_calls_without_reaching_the_port() {
    let (st, plan, port) = store();
    let r = secret_ref("s");
    plan.fail_next("GetSecretValue", [throttled("GetSecretValue")]);
    plan.fail_after("TagResource", 1, [access_denied("TagResource")]);
    let e = port
        .get_value(&r, Select::Stage(AWSCURRENT))
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(port.get_value(&r, Select::Stage(AWSCURRENT)).await.is_ok());
    port.tag(&r, &[("a", "1".into())]).await.unwrap();
    let e = port.tag(&r, &[("b", "2".into())]).await.unwrap_err();
    assert_eq!(e.code(), Some("AccessDeniedException"));
    port.tag(&r, &[("c", "3".into())]).await.unwrap();
    // The store saw only what got through.
    assert_eq!(st.ops(), ["GetSecretValue", "TagResource", "TagResource"]);
    assert!(!st.secret("s").tags.contains_key("b"));
    let injected: Vec<_> = plan
        .injected()
        .iter()
        .map(|i| (i.op, i.what.clone()))
        .collect();
    assert_eq!(
        injected,
        [
            ("GetSecretValue", "ThrottlingException".to_owned()),
            ("TagResource", "AccessDeniedException".to_owned())
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_read_fault_can_target_one_staging_label() {
    let (_, plan, port) = store();
    let r = secret_ref("s");
    plan.fail_next_read(AWSPREVIOUS, [server_error("GetSecretValue")]);
    // A read of another label is not affected, and does not use up the fault.
    assert!(port.get_value(&r, Select::Stage(AWSCURRENT)).await.is_ok());
    let e = port
        .get_value(&r, Select::Stage(AWSPREVIOUS))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InternalServiceError"));
    // Not found now: the fault was used, the fake answers.
    let e = port
        .get_value(&r, Select::Stage(AWSPREVIOUS))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ResourceNotFoundException"));
}

#[tokio::test(start_paused = true)]
async fn an_error_after_the_write_took_effect_and_the_idempotent_retry() {
    let (st, plan, port) = store();
    let r = secret_ref("s");
    plan.inject(
        "PutSecretValue",
        [Fault::timeout_after_write("PutSecretValue")],
    );
    let e = port
        .put_pending(&r, &tok(2), &"two".into())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("Timeout"));
    // It happened anyway ...
    assert_eq!(st.holder("s", AWSPENDING), Some(tok(2)));
    // ... and the retry with the same token and value succeeds without a second version.
    port.put_pending(&r, &tok(2), &"two".into()).await.unwrap();
    assert_eq!(st.secret("s").versions.len(), 2);
    assert_eq!(plan.writes_ok(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_waits_then_fails_and_changes_nothing() {
    let (st, plan, port) = store();
    let r = secret_ref("s");
    plan.inject("PutSecretValue", [Fault::Timeout(Duration::from_secs(30))]);
    let t = Instant::now();
    let e = port
        .put_pending(&r, &tok(2), &"two".into())
        .await
        .unwrap_err();
    assert_eq!(t.elapsed(), Duration::from_secs(30));
    assert!(e.is_retryable());
    assert_eq!(st.write_attempts(), 0);
    assert_eq!(st.holder("s", AWSPENDING), None);
}

#[tokio::test(start_paused = true)]
async fn a_hang_never_answers_and_a_panic_kills_only_its_task() {
    let (_, plan, port) = store();
    let r = secret_ref("s");
    plan.inject("DescribeSecret", [Fault::Hang]);
    let hung = tokio::time::timeout(Duration::from_secs(86_400), port.describe(&r)).await;
    assert!(hung.is_err());
    plan.inject("PutSecretValue", [Fault::Panic]);
    let p = port.clone();
    let task = tokio::spawn(async move {
        p.put_pending(&secret_ref("s"), &tok(2), &"two".into())
            .await
            .map(|_| ())
    });
    assert!(task.await.unwrap_err().is_panic());
    assert!(port.describe(&r).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_crash_after_n_writes_fails_everything_until_restart() {
    let (st, plan, port) = store();
    let r = secret_ref("s");
    plan.crash_after_writes(1);
    port.describe(&r).await.unwrap();
    port.tag(&r, &[("c", "1".into())]).await.unwrap();
    for e in [
        port.describe(&r).await.unwrap_err(),
        port.get_value(&r, Select::Stage(AWSCURRENT))
            .await
            .unwrap_err(),
        port.tag(&r, &[("d", "1".into())]).await.unwrap_err(),
    ] {
        assert_eq!(e.code(), Some(CRASH));
    }
    plan.restart();
    assert!(port.describe(&r).await.is_ok());
    assert_eq!(
        st.ops(),
        ["DescribeSecret", "TagResource", "DescribeSecret"]
    );
    assert_eq!(st.writes_ok(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_crash_on_a_write_lets_n_concurrent_forces_through_and_kills_the_rest() {
    let clock = ManualClock::new(at("2026-03-03T02:00:00Z"));
    let ecs = FakeEcs::new(&clock, &Sequence::default());
    for s in ["a", "b", "c", "d"] {
        ecs.add_service("prod", s, 1, Behaviour::Stall);
    }
    let plan = FaultPlan::new();
    let port = Faulty::new(ecs.clone(), &plan);
    let acct = Account::default();
    // Reads before the crash work.
    port.describe(&acct, &ClusterName::from("prod"), &[ServiceName::from("a")])
        .await
        .unwrap();
    plan.crash_on_write(2);
    let forces = ["a", "b", "c", "d"].map(|s| {
        let p = port.clone();
        let acct = acct.clone();
        tokio::spawn(async move { p.force_deploy(&acct, &svc("prod", s)).await })
    });
    let mut ok = 0;
    for f in forces {
        match f.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.code(), Some(CRASH)),
        }
    }
    assert_eq!(ok, 2);
    assert_eq!(ecs.force_calls().len(), 2, "the others never reached ECS");
    let e = port
        .describe(&acct, &ClusterName::from("prod"), &[ServiceName::from("a")])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(CRASH), "dead after the crash");
    plan.restart();
    assert!(port
        .describe(&acct, &ClusterName::from("prod"), &[ServiceName::from("a")])
        .await
        .is_ok());
}

#[tokio::test(start_paused = true)]
async fn iam_and_lease_table_calls_meet_the_plan_too() {
    let clock = ManualClock::new(at("2026-03-03T02:00:00Z"));
    let plan = FaultPlan::new();
    let iam = Faulty::new(FakeIam::new(&clock), &plan);
    iam.inner().add_key("app", "k1", "s1");
    let acct = Account::default();
    plan.fail_next("CreateAccessKey", [throttled("CreateAccessKey")]);
    assert!(iam
        .create_key(&acct, "app")
        .await
        .err()
        .expect("throttled")
        .is_retryable());
    assert_eq!(iam.list_keys(&acct, "app").await.unwrap().len(), 1);
    iam.create_key(&acct, "app").await.unwrap();
    assert_eq!(iam.inner().calls(), ["list_keys app", "create_key app"]);

    let leases = Faulty::new(MemoryLeases::new(), &plan);
    let req = AcquireRequest {
        key: "k".into(),
        owner: "a".into(),
        expires_at: at("2026-03-03T02:01:00Z"),
        cutoff: at("2026-03-03T01:59:45Z"),
    };
    plan.fail_next("UpdateItem:renew", [server_error("UpdateItem")]);
    let AcquireOutcome::Acquired(lease) = leases.acquire(&req).await.unwrap() else {
        panic!("a free lease")
    };
    let e = leases
        .renew(&lease, at("2026-03-03T02:02:00Z"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, LeaseError::Store(ref e) if e.code() == Some("InternalServiceError")),
        "{e}"
    );
    assert!(leases.verify(&lease).await.is_ok());
    leases.release(&lease).await.unwrap();
}
