//! The fake IAM's own rules.

use super::*;
use crate::clock::at;
use rotator_core::rotation::target::IamApi;
use std::time::Duration;

#[tokio::test(start_paused = true)]
async fn two_keys_per_user_and_only_an_active_key_authenticates() {
    let iam = FakeIam::new(&ManualClock::new(at("2026-03-03T02:00:00Z")));
    let acct = Account::default();
    iam.add_key("app", "testing-old-key-id", "old-secret");
    let new = iam.create_key(&acct, "app").await.unwrap();
    assert_ne!(new.id, "testing-old-key-id");
    let e = iam
        .create_key(&acct, "app")
        .await
        .err()
        .expect("a third key");
    assert_eq!(e.code(), Some("LimitExceeded"));
    let keys = iam.list_keys(&acct, "app").await.unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k.active));

    let arn = iam.caller_arn(&acct, &new.id, &new.secret).await.unwrap();
    assert_eq!(arn, format!("arn:aws:iam::{ACCOUNT_ID}:user/app"));
    let wrong = SecretString::from("not-the-secret");
    assert_eq!(
        iam.caller_arn(&acct, &new.id, &wrong)
            .await
            .unwrap_err()
            .code(),
        Some("InvalidClientTokenId")
    );
    iam.set_active(&acct, "app", "testing-old-key-id", false)
        .await
        .unwrap();
    assert!(!iam.key("testing-old-key-id").unwrap().active);
    let old = SecretString::from("old-secret");
    assert!(iam
        .caller_arn(&acct, "testing-old-key-id", &old)
        .await
        .is_err());
    iam.delete_key(&acct, "app", "testing-old-key-id")
        .await
        .unwrap();
    assert_eq!(
        iam.delete_key(&acct, "app", "testing-old-key-id")
            .await
            .unwrap_err()
            .code(),
        Some("NoSuchEntity")
    );
    assert_eq!(
        iam.calls(),
        [
            "create_key app",
            "create_key app",
            "list_keys app",
            format!("caller_arn {}", new.id).as_str(),
            format!("caller_arn {}", new.id).as_str(),
            "set_active testing-old-key-id",
            "caller_arn testing-old-key-id",
            "delete_key testing-old-key-id",
            "delete_key testing-old-key-id",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_hanging_handle_never_answers_that_call() {
    let iam = FakeIam::new(&ManualClock::new(at("2026-03-03T02:00:00Z")));
    iam.add_key("app", "k1", "s1");
    let stuck = iam.hanging("caller_arn");
    let acct = Account::default();
    let s1 = SecretString::from("s1");
    let r = tokio::time::timeout(
        Duration::from_secs(3600),
        stuck.caller_arn(&acct, "k1", &s1),
    )
    .await;
    assert!(r.is_err(), "answered: {r:?}");
    assert!(stuck.list_keys(&acct, "app").await.is_ok());
    assert!(iam.caller_arn(&acct, "k1", &s1).await.is_ok());
}
