//! The fake Secrets Manager's own rules; the engine tests are only as good as these.
//! (`tests/conformance.rs` of the root crate checks the same rules against moto.)

use super::*;
use crate::clock::{at, ManualClock};
use crate::config::secret_ref;
use rotator_core::ids::Account;
use rotator_core::rotation::store::describe_all;
use std::time::Duration;

fn store() -> (FakeStore, VersionId) {
    let clock = ManualClock::new(at("2026-03-03T02:00:00Z"));
    let st = FakeStore::new(&clock, &Sequence::default());
    st.create_secret("s", "one");
    let v1 = st.holder("s", AWSCURRENT).unwrap();
    (st, v1)
}

fn tok(n: u8) -> VersionId {
    VersionId::new(format!("{n:08}-1111-4111-8111-111111111111"))
}

fn invalid(r: Result<(), AwsError>) -> String {
    let e = r.expect_err("AWS refuses this");
    assert_eq!(e.code(), Some("InvalidParameterException"), "{e}");
    e.to_string()
}

#[tokio::test(start_paused = true)]
async fn put_secret_value_moves_labels_and_refuses_to_change_a_version() {
    let (st, v1) = store();
    let id = SecretId::from("s");
    // Without VersionStages the new version becomes AWSCURRENT; AWSPREVIOUS follows.
    let v2 = st
        .put_secret_value(&id, Some(&tok(2)), "two", None)
        .await
        .unwrap();
    assert_eq!(v2, tok(2));
    assert_eq!(st.holder("s", AWSCURRENT), Some(tok(2)));
    assert_eq!(st.holder("s", AWSPREVIOUS), Some(v1.clone()));
    let changed = st.secret("s").last_changed;

    // The same token and value again: ignored (idempotent), nothing changes.
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        st.put_secret_value(&id, Some(&tok(2)), "two", Some(&[AWSPENDING]))
            .await
            .unwrap(),
        tok(2)
    );
    let s = st.secret("s");
    assert_eq!(s.versions.len(), 2);
    assert_eq!(
        s.holder(AWSPENDING),
        None,
        "the labels of the repeat are ignored"
    );
    assert_eq!(s.last_changed, changed);

    // The same token with another value: ResourceExistsException, nothing changes.
    let e = st
        .put_secret_value(&id, Some(&tok(2)), "other", None)
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code()),
        (ErrorClass::Conflict, Some("ResourceExistsException"))
    );
    assert_eq!(st.value_of("s", &tok(2)), "two");
    // ... also while the version is AWSPENDING (what a rotation retries).
    let r = secret_ref("s");
    st.put_pending(&r, &tok(3), &"three".into()).await.unwrap();
    let e = st
        .put_pending(&r, &tok(3), &"changed".into())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ResourceExistsException"));
    assert_eq!(st.value_of("s", &tok(3)), "three");

    // Tokens are 32 to 64 characters.
    let e = st
        .put_secret_value(&id, Some(&VersionId::from("short")), "x", None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ValidationException"));
    // Without a token the store makes a version id.
    let v = st.put_secret_value(&id, None, "four", None).await.unwrap();
    assert_eq!(st.holder("s", AWSCURRENT), Some(v));
    assert_eq!(st.holder("s", AWSPREVIOUS), Some(tok(2)));
}

#[tokio::test(start_paused = true)]
async fn a_label_lives_on_one_version_and_unlabelled_versions_are_deprecated() {
    let (st, v1) = store();
    let id = SecretId::from("s");
    let r = secret_ref("s");
    st.put_secret_value(&id, Some(&tok(2)), "two", None)
        .await
        .unwrap();
    // AWSPENDING moves to the newest pending version.
    st.put_pending(&r, &tok(3), &"three".into()).await.unwrap();
    st.put_pending(&r, &tok(4), &"four".into()).await.unwrap();
    assert_eq!(st.holder("s", AWSPENDING), Some(tok(4)));
    assert!(st.secret("s").version(&tok(3)).unwrap().stages.is_empty());
    // Deprecated: still readable by id, but neither described nor listed.
    let (v, value) = st.get_secret_value(&id, Some(&tok(3)), None).await.unwrap();
    assert_eq!((v, value.as_str()), (tok(3), "three"));
    assert!(st
        .get_value(&r, Select::Version(&tok(3), AWSPENDING))
        .await
        .is_err());
    assert!(!st
        .describe(&r)
        .await
        .unwrap()
        .versions
        .contains_key(&tok(3)));
    let listed: Vec<_> = st
        .versions(&r)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.id)
        .collect();
    assert_eq!(listed, [v1, tok(2), tok(4)]);
    // By stage, and with neither stage nor id: AWSCURRENT.
    assert_eq!(
        st.get_value(&r, Select::Stage(AWSPENDING)).await.unwrap().0,
        tok(4)
    );
    assert_eq!(st.get_secret_value(&id, None, None).await.unwrap().1, "two");
    let e = st.get_value(&r, Select::Stage("NOPE")).await.unwrap_err();
    assert_eq!(e.code(), Some("ResourceNotFoundException"));
}

#[tokio::test(start_paused = true)]
async fn update_secret_version_stage_follows_the_documented_rules() {
    let (st, v1) = store();
    let id = SecretId::from("s");
    let r = secret_ref("s");
    st.put_secret_value(&id, Some(&tok(2)), "two", None)
        .await
        .unwrap();
    st.put_pending(&r, &tok(3), &"three".into()).await.unwrap();
    st.put_pending(&r, &tok(4), &"four".into()).await.unwrap();

    // A label attached elsewhere must be named in RemoveFromVersionId ...
    invalid(st.update_stage(&r, AWSPENDING, Some(&tok(3)), None).await);
    // ... and RemoveFromVersionId must hold it.
    invalid(
        st.update_stage(&r, AWSPENDING, Some(&tok(3)), Some(&tok(2)))
            .await,
    );
    invalid(st.update_stage(&r, AWSPENDING, None, Some(&tok(3))).await);
    // AWSCURRENT can only be moved, never just removed.
    invalid(st.update_stage(&r, AWSCURRENT, None, Some(&tok(2))).await);
    invalid(st.update_stage(&r, AWSPENDING, None, None).await);
    // An unknown version.
    assert_eq!(
        st.update_stage(&r, AWSPENDING, Some(&tok(9)), Some(&tok(4)))
            .await
            .unwrap_err()
            .code(),
        Some("ResourceNotFoundException")
    );
    assert_eq!(
        st.holder("s", AWSPENDING),
        Some(tok(4)),
        "refusals change nothing"
    );

    st.update_stage(&r, AWSPENDING, Some(&tok(3)), Some(&tok(4)))
        .await
        .unwrap();
    assert_eq!(st.holder("s", AWSPENDING), Some(tok(3)));
    // Moving AWSCURRENT moves AWSPREVIOUS to the version it came from.
    st.update_stage(&r, AWSCURRENT, Some(&tok(3)), Some(&tok(2)))
        .await
        .unwrap();
    let s = st.secret("s");
    assert_eq!(
        s.holder(AWSCURRENT).unwrap().stages,
        [AWSPENDING, AWSCURRENT]
    );
    assert_eq!(s.holder(AWSPREVIOUS).unwrap().id, tok(2));
    assert!(s.version(&v1).unwrap().stages.is_empty());
    // Moving a label to the version that has it changes nothing.
    st.update_stage(&r, AWSCURRENT, Some(&tok(3)), None)
        .await
        .unwrap();
    assert_eq!(st.holder("s", AWSPREVIOUS), Some(tok(2)));
    // Removing a label.
    st.update_stage(&r, AWSPENDING, None, Some(&tok(3)))
        .await
        .unwrap();
    assert_eq!(st.holder("s", AWSPENDING), None);
}

#[tokio::test(start_paused = true)]
async fn tags_merge_and_every_write_moves_last_changed() {
    let (st, _) = store();
    let r = secret_ref("s");
    let created = st.secret("s").last_changed;
    tokio::time::advance(Duration::from_secs(60)).await;
    st.tag(&r, &[("a", "1".into()), ("b", "2".into())])
        .await
        .unwrap();
    st.tag(&r, &[("b", "3".into())]).await.unwrap();
    let s = st.secret("s");
    assert_eq!(
        s.tags.into_iter().collect::<Vec<_>>(),
        [("a".into(), "1".into()), ("b".into(), "3".into())]
    );
    assert_eq!(s.last_changed, created + chrono::Duration::seconds(60));
    let meta = st.describe(&r).await.unwrap();
    assert_eq!(meta.last_changed, Some(s.last_changed));
    assert_eq!(meta.tags["b"], "3");
}

#[tokio::test(start_paused = true)]
async fn secrets_are_found_by_name_or_arn_and_described_many_at_once() {
    let (st, _) = store();
    let arn = st.create_tagged("other", "x", &[("team", "payments")]);
    assert_eq!(st.secret("other").tags["team"], "payments");
    assert!(arn.as_str().starts_with(&format!(
        "arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:other-"
    )));
    let by_arn = st.describe(&secret_ref(arn.as_str())).await.unwrap();
    assert_eq!(by_arn.name, "other");
    // describe_many: one DescribeSecret per ref, in order, errors in place.
    let missing = SecretRef {
        id: SecretId::from("nope"),
        account: Account::default(),
        store: Default::default(),
    };
    let many = describe_all(&st, &[secret_ref("s"), missing, secret_ref("other")]).await;
    assert_eq!(many[0].as_ref().unwrap().name, "s");
    assert_eq!(
        many[1].as_ref().unwrap_err().code(),
        Some("ResourceNotFoundException")
    );
    assert_eq!(many[2].as_ref().unwrap().name, "other");
    assert_eq!(st.op_count("DescribeSecret"), 4);
    assert_eq!(st.count_ok("DescribeSecret"), 3);
}

#[tokio::test(start_paused = true)]
async fn a_secret_scheduled_for_deletion_is_described_but_not_read_or_written() {
    let (st, _) = store();
    let r = secret_ref("s");
    st.edit("s", |s| s.deleted = true);
    assert!(st.describe(&r).await.unwrap().deleted);
    for e in [
        st.get_value(&r, Select::Stage(AWSCURRENT))
            .await
            .unwrap_err(),
        st.put_pending(&r, &tok(2), &"x".into()).await.unwrap_err(),
        st.tag(&r, &[("k", "v".into())]).await.unwrap_err(),
    ] {
        assert_eq!(e.code(), Some("InvalidRequestException"), "{e}");
    }
    assert_eq!(st.secret("s").versions.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_call_log_records_order_results_and_write_details() {
    let clock = ManualClock::new(at("2026-03-03T02:00:00Z"));
    let seq = Sequence::default();
    let st = FakeStore::new(&clock, &seq);
    st.create_secret("s", "one");
    let r = secret_ref("s");
    seq.next(); // another fake's call in between
    st.put_pending(&r, &tok(2), &"two".into()).await.unwrap();
    st.put_pending(&r, &tok(2), &"not two".into())
        .await
        .unwrap_err();
    let cur = st.holder("s", AWSCURRENT).unwrap();
    st.update_stage(&r, AWSCURRENT, Some(&tok(2)), Some(&cur))
        .await
        .unwrap();
    let calls = st.calls();
    assert_eq!(
        calls.iter().map(|c| c.seq).collect::<Vec<_>>(),
        [2, 3, 4],
        "numbers shared with the other fake"
    );
    assert!(calls[0].ok() && !calls[1].ok() && calls[2].ok());
    assert!(calls[1]
        .error
        .as_deref()
        .is_some_and(|e| e.contains("ResourceExistsException")));
    assert_eq!(
        calls[2].detail,
        format!("AWSCURRENT to={} from={cur}", tok(2))
    );
    assert!(
        !calls.iter().any(|c| c.detail.contains("two")),
        "no value in the log"
    );
    assert_eq!((st.write_attempts(), st.writes_ok()), (3, 2));
    st.clear_calls();
    assert!(st.calls().is_empty());
    assert_eq!((st.write_attempts(), st.writes_ok()), (0, 2));

    // Without a call log the counters still count.
    let quiet = FakeStore::new(&clock, &seq).without_call_log();
    quiet.create_secret("q", "v");
    quiet.describe(&secret_ref("q")).await.unwrap();
    assert!(quiet.calls().is_empty());
    assert_eq!(quiet.count_ok("DescribeSecret"), 1);
}

#[tokio::test(start_paused = true)]
async fn seeded_versions_and_edits_do_not_count_as_calls() {
    let (st, v1) = store();
    let when = at("2026-01-01T00:00:00Z");
    st.seed_version("s", "foreign-1", "theirs", &[AWSPENDING], when);
    st.seed_version("s", "foreign-2", "theirs too", &[AWSCURRENT], when);
    let s = st.secret("s");
    assert_eq!(s.holder(AWSPENDING).unwrap().id.as_str(), "foreign-1");
    assert_eq!(s.holder(AWSCURRENT).unwrap().id.as_str(), "foreign-2");
    assert_eq!(s.holder(AWSPREVIOUS).unwrap().id, v1);
    assert_eq!(
        s.version(&VersionId::from("foreign-1")).unwrap().created,
        when
    );
    assert_eq!(st.count_secrets(|s| s.versions.len() == 3), 1);
    assert!(st.calls().is_empty());
    assert_eq!(
        st.all_values().len(),
        3,
        "every value ever stored, for leak checks"
    );
}
