//! The `iam-access-key` target end to end: `rotate` against moto (Secrets Manager, IAM,
//! STS) and ecs-sim (ECS). At the end, the engine with this target on the test kit's
//! in-memory AWS (its revoke after a failed read, a hung STS call).

mod common;
/// The core's engine-test world (one secret, four consumers, in-memory Secrets Manager
/// and ECS on paused time), shared with `crates/core/tests/suite/engine.rs`.
#[path = "../crates/core/tests/common/world.rs"]
mod memory;

use common::*;
use rotator_core::config::Target;
use rotator_core::rotation::Step;
use rotator_test_kit::FakeIam;
use secret_rotator::targets::iam::{IamTarget, WithIam};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const SEED: &str = r#"{"clusters":[{"name":"prod","services":[
  {"name":"api","desiredCount":1},{"name":"pdf","desiredCount":1}]}]}"#;
const USER: &str = "svc-app";

async fn iam_client(url: &str) -> aws_sdk_iam::Client {
    let conf = aws_sdk_iam::config::Builder::new()
        .endpoint_url(url)
        .region(aws_sdk_iam::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_iam::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .behavior_version_latest()
        .build();
    aws_sdk_iam::Client::from_conf(conf)
}

/// GetCallerIdentity signed with the given key: the caller's ARN.
async fn whoami(url: &str, id: &str, secret: &str) -> String {
    let conf = aws_sdk_sts::config::Builder::new()
        .endpoint_url(url)
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            id, secret, None, None, "test",
        ))
        .behavior_version_latest()
        .build();
    aws_sdk_sts::Client::from_conf(conf)
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity")
        .arn()
        .unwrap_or_default()
        .to_owned()
}

async fn create_key(iam: &aws_sdk_iam::Client) -> (String, String) {
    let out = iam
        .create_access_key()
        .user_name(USER)
        .send()
        .await
        .expect("create key");
    let k = out.access_key().unwrap();
    (
        k.access_key_id().to_owned(),
        k.secret_access_key().to_owned(),
    )
}

/// Key id -> "Active"/"Inactive".
async fn keys(iam: &aws_sdk_iam::Client) -> BTreeMap<String, String> {
    iam.list_access_keys()
        .user_name(USER)
        .send()
        .await
        .expect("list keys")
        .access_key_metadata()
        .iter()
        .map(|k| {
            (
                k.access_key_id().unwrap_or_default().to_owned(),
                k.status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

async fn tag(c: &aws_sdk_secretsmanager::Client, id: &str, key: &str) -> Option<String> {
    c.describe_secret()
        .secret_id(id)
        .send()
        .await
        .unwrap()
        .tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
        .map(str::to_owned)
}

fn config(extra_target: &str, redeploy: bool) -> String {
    format!(
        r#"
[[secret]]
name = "svc-key"
secret_id = "svc/key"
every = "30d"
target = {{ kind = "iam-access-key", user = "{USER}"{extra_target} }}
{}
stable_timeout = "1m"
"#,
        if redeploy {
            r#"redeploy = [{ cluster = "prod", services = ["api", "pdf"] }]"#
        } else {
            ""
        }
    )
}

fn rotate(dir: &Path, env: &[(String, String)]) -> (bool, String) {
    let out = rotator(
        &["rotate", "svc-key", "--config", dir.to_str().unwrap()],
        env,
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

struct World {
    moto: Moto,
    sm: aws_sdk_secretsmanager::Client,
    iam: aws_sdk_iam::Client,
    first: (String, String),
}

async fn world() -> World {
    let moto = Moto::start();
    let sm = sm_client(&moto.url).await;
    let iam = iam_client(&moto.url).await;
    iam.create_user().user_name(USER).send().await.unwrap();
    let first = create_key(&iam).await;
    let value = serde_json::json!({
        "AccessKeyId": first.0,
        "SecretAccessKey": first.1,
        "region": "us-east-1",
    });
    create_secret(&sm, "svc/key", &value.to_string(), &[]).await;
    World {
        moto,
        sm,
        iam,
        first,
    }
}

impl World {
    async fn current(&self) -> Value {
        serde_json::from_str(&value_at(&self.sm, "svc/key", "AWSCURRENT").await).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_creates_a_working_key_and_deactivates_then_deletes_the_old_one() {
    let w = world().await;
    let sim = EcsSim::start(&["--time-scale", "20"], SEED);
    let dir = config_dir(&config("", true));
    let env = aws_env(Some(&w.moto.url), Some(&sim.url));
    let (ok, out) = rotate(dir.path(), &env);
    assert!(ok, "{out}");

    let v = w.current().await;
    let k2 = v["AccessKeyId"].as_str().unwrap().to_owned();
    let s2 = v["SecretAccessKey"].as_str().unwrap().to_owned();
    assert_ne!(k2, w.first.0);
    assert_eq!(v["region"], "us-east-1", "other keys are kept");
    let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["AccessKeyId", "SecretAccessKey", "region"]);
    assert!(
        !out.contains(&s2),
        "the secret access key was printed: {out}"
    );

    let now = self::keys(&w.iam).await;
    assert_eq!(now.get(&k2).map(String::as_str), Some("Active"));
    assert_eq!(
        now.get(&w.first.0).map(String::as_str),
        Some("Inactive"),
        "revoke deactivates the old key: {now:?}"
    );
    assert!(
        whoami(&w.moto.url, &k2, &s2)
            .await
            .ends_with(&format!(":user/{USER}")),
        "the new key authenticates as the user"
    );
    let deactivated = tag(&w.sm, "svc/key", "secret-rotator:iam-deactivated")
        .await
        .unwrap();
    assert!(
        deactivated.starts_with(&format!("{}@", w.first.0)),
        "{deactivated}"
    );

    // Next rotation: the first key (inactive) is deleted to make room, the second is
    // deactivated, the third is current.
    let (ok, out) = rotate(dir.path(), &env);
    assert!(ok, "{out}");
    let k3 = w.current().await["AccessKeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let now = self::keys(&w.iam).await;
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(!now.contains_key(&w.first.0), "{now:?}");
    assert_eq!(now.get(&k2).map(String::as_str), Some("Inactive"));
    assert_eq!(now.get(&k3).map(String::as_str), Some("Active"));
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_after_zero_deletes_the_old_key_at_revoke() {
    let w = world().await;
    let dir = config_dir(&config(", delete_after = \"0s\"", false));
    let (ok, out) = rotate(dir.path(), &aws_env(Some(&w.moto.url), None));
    assert!(ok, "{out}");
    let k2 = w.current().await["AccessKeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let now = keys(&w.iam).await;
    assert_eq!(now.keys().collect::<Vec<_>>(), [&k2], "{now:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_active_second_key_stops_the_rotation_before_any_change() {
    let w = world().await;
    let (other, _) = create_key(&w.iam).await;
    let before = stages(&w.sm, "svc/key").await;
    let dir = config_dir(&config("", false));
    let (ok, out) = rotate(dir.path(), &aws_env(Some(&w.moto.url), None));
    assert!(!ok, "{out}");
    assert!(
        out.lines().any(|l| l.contains(&format!("{other} (active)"))
            && l.contains("already has two access keys")),
        "{out}"
    );
    assert_eq!(stages(&w.sm, "svc/key").await, before, "nothing written");
    let now = keys(&w.iam).await;
    assert_eq!(now.len(), 2);
    assert!(
        now.values().all(|s| s == "Active"),
        "nothing deactivated: {now:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_marked_only_by_a_creating_time_is_never_deleted() {
    let w = world().await;
    // What a run that died between CreateAccessKey and PutSecretValue leaves behind:
    // the creating tag, then a key no version references.
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    w.sm.tag_resource()
        .secret_id("svc/key")
        .tags(
            aws_sdk_secretsmanager::types::Tag::builder()
                .key("secret-rotator:iam-creating")
                .value(now)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let (orphan, _) = create_key(&w.iam).await;
    let dir = config_dir(&config("", false));
    // The creating tag holds only a time, which whoever can tag the secret can forge: it
    // does not prove the active key is ours, so it is left for the operator (SECURITY.md).
    let (ok, out) = rotate(dir.path(), &aws_env(Some(&w.moto.url), None));
    assert!(!ok, "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains(&format!("{orphan} (active)"))),
        "{out}"
    );
    let now = keys(&w.iam).await;
    assert_eq!(
        now.get(&orphan).map(String::as_str),
        Some("Active"),
        "{now:?}"
    );
    assert_eq!(now.get(&w.first.0).map(String::as_str), Some("Active"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolled_back_consumer_keeps_the_old_key_active() {
    let w = world().await;
    let seed = SEED.replace(
        r#"{"name":"pdf","desiredCount":1}"#,
        r#"{"name":"pdf","desiredCount":1,"behavior":"failing"}"#,
    );
    let sim = EcsSim::start(&["--time-scale", "20"], &seed);
    let dir = config_dir(&config("", true));
    let (ok, out) = rotate(dir.path(), &aws_env(Some(&w.moto.url), Some(&sim.url)));
    assert!(!ok, "{out}");
    assert!(
        out.contains("rolled back") && out.contains("prod/pdf"),
        "{out}"
    );
    let now = keys(&w.iam).await;
    assert_eq!(
        now.get(&w.first.0).map(String::as_str),
        Some("Active"),
        "no revoke after a failed redeploy: {now:?}"
    );
    assert!(
        whoami(&w.moto.url, &w.first.0, &w.first.1)
            .await
            .ends_with(&format!(":user/{USER}")),
        "the old key still works"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_says_what_would_happen_and_changes_nothing() {
    let w = world().await;
    let dir = config_dir(&config("", false));
    let out = rotator(
        &[
            "rotate",
            "svc-key",
            "--dry-run",
            "--config",
            dir.path().to_str().unwrap(),
        ],
        &aws_env(Some(&w.moto.url), None),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("create a new access key for IAM user {USER}"))
            && stdout.contains("revoke: deactivate the previous access key (deleted at the first rotation after 1d)"),
        "{stdout}"
    );
    assert_eq!(keys(&w.iam).await.len(), 1);
    assert_eq!(version_count(&w.sm, "svc/key").await, 1);
}

// ---- The engine with this target, on the test kit's in-memory AWS ---------------------

const IAM_USER: &str = "svc-app";
const OLD_KEY: &str = "testing-old-key-id";

/// The in-memory world with an `iam-access-key` target whose current value is `OLD_KEY`.
fn iam_world() -> (memory::World, FakeIam) {
    let mut w = memory::World::new();
    let iam = FakeIam::new(&w.clock);
    iam.add_key(IAM_USER, OLD_KEY, "old-secret-access-key");
    w.store.edit(memory::SECRET, |s| {
        s.versions[0].value =
            format!(r#"{{"AccessKeyId":"{OLD_KEY}","SecretAccessKey":"old-secret-access-key"}}"#)
    });
    w.cfg.target = Target::new(IamTarget {
        user: IAM_USER.into(),
        delete_after: Duration::from_secs(7 * 86_400),
    });
    (w, iam)
}

/// 11.3: a read error before revoke is a failed revoke step, never "nothing to revoke":
/// the old key stays active until the retry deactivates it.
#[tokio::test(start_paused = true)]
async fn a_failed_read_of_the_previous_value_fails_the_revoke_and_the_retry_revokes() {
    for error in memory::previous_read_errors() {
        let (w, iam) = iam_world();
        let engine = w
            .engine_deploying_after_the_move()
            .with_iam(Arc::new(iam.clone()));
        w.assert_a_failed_previous_read_fails_the_revoke(&engine, error, || {
            !iam.key(OLD_KEY).unwrap().active
        })
        .await;
    }
}

/// 11.3: a not-found read of AWSPREVIOUS (eventual consistency right after the stage
/// move) while the secret does list an AWSPREVIOUS version is an error, not "no previous".
#[tokio::test(start_paused = true)]
async fn a_not_found_read_of_an_existing_previous_version_fails_the_revoke() {
    let (mut w, iam) = iam_world();
    w.cfg.redeploy = Box::default();
    let engine = w.engine().with_iam(Arc::new(iam.clone()));
    w.assert_a_not_found_previous_read_fails_the_revoke(&engine)
        .await;
    assert!(iam.key(OLD_KEY).unwrap().active);
}

/// 12.4: a target step that never answers (here STS) fails after the step timeout.
#[tokio::test(start_paused = true)]
async fn a_target_test_that_never_answers_fails_the_test_step_after_the_step_timeout() {
    let (w, iam) = iam_world();
    let engine = w.engine().with_iam(Arc::new(iam.hanging("caller_arn")));
    w.assert_a_hung_target_step_times_out(&engine, Step::Test)
        .await;
}
