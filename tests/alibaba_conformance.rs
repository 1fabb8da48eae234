//! The same scenario through Alibaba Cloud's own Python SDK (alibabacloud-kms20160120,
//! tests/vendor/alibaba_conformance.py) and through our Rust client
//! (`stores::alibaba::calls`), each against a fresh alibaba-kms-sim: both transcripts must
//! be equal. The vendor SDK keeps the simulator honest about request shapes, signing and
//! answers; the comparison keeps our client honest about the simulator.
//!
//! Needs the simulator binary and the SDK in .venv (scripts/install-tools). Without .venv
//! the test is skipped locally; in CI (CI=true) a missing .venv is a failure.

mod common;

use common::alibaba::{AlibabaSim, AK, SK};
use common::repo_root;
use secrecy::SecretString;
use secret_rotator::stores::alibaba::calls::{Kms, Page, SecretValue, Stored, VersionEntry};
use secret_rotator::stores::alibaba::client::{CallError, Transport};
use secret_rotator::stores::alibaba::{Credentials, Endpoint, Tuning};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

const SECRET: &str = "conf-db";
const PENDING: &str = "SecretRotatorPending";
/// Must match VALUES in the Python script.
const VALUES: [(&str, &str); 3] = [
    ("one", "s3cr3t-one!"),
    ("two", "s3cr3t two*"),
    ("three", "s3cr3t~three/"),
];

fn value(name: &str) -> SecretString {
    let v = VALUES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("", |(_, v)| *v);
    SecretString::from(v.to_owned())
}

fn name_of(v: &str) -> &'static str {
    VALUES
        .iter()
        .find(|(_, x)| *x == v)
        .map_or("?", |(n, _)| *n)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn tags(t: &Option<Vec<(String, String)>>) -> Value {
    match t {
        None => Value::Null,
        Some(t) => {
            let mut pairs: Vec<Vec<String>> =
                t.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect();
            pairs.sort();
            json!(pairs)
        }
    }
}

/// `{"step", "ok": shape}` or `{"step", "error": {"status", "code"}}`.
fn obs<T>(
    out: &mut Vec<Value>,
    step: &str,
    r: Result<T, CallError>,
    shape: impl FnOnce(T) -> Value,
) {
    out.push(match r {
        Ok(v) => json!({"step": step, "ok": shape(v)}),
        Err(e) => json!({"step": step, "error": {
            "status": e.status,
            "code": e.error.code(),
        }}),
    });
}

fn value_of(v: SecretValue) -> Value {
    use secrecy::ExposeSecret;
    json!({
        "version_id": v.version_id,
        "value": name_of(v.value.expose_secret()),
        "stages": sorted(v.stages),
    })
}

fn put_shape(s: Stored) -> Value {
    json!({"version_id": s.version_id, "stages": sorted(s.stages)})
}

fn empty<T>(_: T) -> Value {
    json!({})
}

async fn rust_transcript(sim: &AlibabaSim) -> Vec<Value> {
    // One attempt, as the vendor SDK makes by default: the throttled step must be seen.
    let transport = Transport::new(Tuning {
        attempts: 1,
        timeout: Duration::from_secs(10),
        ..Tuning::default()
    });
    let endpoint = Endpoint::parse(&sim.url).unwrap();
    let good = Credentials::new(AK, SecretString::from(SK.to_owned()), None);
    let c = Kms {
        transport: &transport,
        endpoint: &endpoint,
        creds: &good,
    };
    let mut out = Vec::new();
    let o = &mut out;

    obs(
        o,
        "create",
        c.create_secret(SECRET, "v1", &value("one"), &[("team", "db".into())])
            .await,
        |s| json!({"arn": s.arn, "name": s.name, "version_id": s.version_id}),
    );
    obs(
        o,
        "create_again",
        c.create_secret(SECRET, "v9", &value("two"), &[]).await,
        empty,
    );
    for n in ["conf-a", "conf-b", "conf-c"] {
        obs(
            o,
            &format!("create_{n}"),
            c.create_secret(n, "v1", &value("one"), &[]).await,
            |s| json!({"name": s.name}),
        );
    }
    obs(
        o,
        "put_pending",
        c.put_secret_value(SECRET, "v2", &value("two"), Some(&[PENDING]))
            .await,
        put_shape,
    );
    obs(
        o,
        "get_pending",
        c.get_secret_value(SECRET, Some(PENDING), None).await,
        value_of,
    );
    obs(
        o,
        "get_v1",
        c.get_secret_value(SECRET, None, Some("v1")).await,
        value_of,
    );
    obs(
        o,
        "get_v2_as_current",
        c.get_secret_value(SECRET, Some("ACSCurrent"), Some("v2"))
            .await,
        value_of,
    );
    obs(
        o,
        "get_default",
        c.get_secret_value(SECRET, None, None).await,
        value_of,
    );
    obs(
        o,
        "move_current",
        c.update_secret_version_stage(SECRET, "ACSCurrent", Some("v2"), Some("v1"))
            .await,
        empty,
    );
    obs(
        o,
        "get_previous",
        c.get_secret_value(SECRET, Some("ACSPrevious"), None).await,
        value_of,
    );
    obs(
        o,
        "get_current",
        c.get_secret_value(SECRET, Some("ACSCurrent"), None).await,
        value_of,
    );
    obs(
        o,
        "remove_pending",
        c.update_secret_version_stage(SECRET, PENDING, None, Some("v2"))
            .await,
        empty,
    );
    obs(
        o,
        "get_pending_gone",
        c.get_secret_value(SECRET, Some(PENDING), None).await,
        value_of,
    );
    obs(
        o,
        "remove_current",
        c.update_secret_version_stage(SECRET, "ACSCurrent", None, Some("v2"))
            .await,
        empty,
    );
    obs(
        o,
        "put_same_again",
        c.put_secret_value(SECRET, "v2", &value("two"), Some(&[PENDING]))
            .await,
        put_shape,
    );
    obs(
        o,
        "put_different_again",
        c.put_secret_value(SECRET, "v2", &value("three"), Some(&[PENDING]))
            .await,
        put_shape,
    );
    obs(
        o,
        "put_current",
        c.put_secret_value(SECRET, "v3", &value("three"), None)
            .await,
        put_shape,
    );

    for (step, deprecated) in [("list_versions", false), ("list_versions_deprecated", true)] {
        let mut pages = Vec::new();
        let mut total = 0;
        for n in 1.. {
            let p: Page<VersionEntry> = c
                .list_secret_version_ids(SECRET, n, 2, deprecated)
                .await
                .unwrap();
            total = p.total;
            pages.push(
                p.items
                    .into_iter()
                    .map(|v| json!([v.id, sorted(v.stages)]))
                    .collect::<Vec<_>>(),
            );
            if n * 2 >= total {
                break;
            }
        }
        o.push(json!({"step": step, "ok": {"total": total, "pages": pages}}));
    }

    obs(
        o,
        "tag",
        c.tag_resource(
            SECRET,
            &[
                ("secret-rotator:last-rotated", "2026-03-03T02:00:00Z".into()),
                ("team", "kms".into()),
            ],
        )
        .await,
        empty,
    );
    obs(
        o,
        "tag_reserved",
        c.tag_resource(SECRET, &[("acs:x", "1".into())]).await,
        empty,
    );
    let describe_shape = |s: secret_rotator::stores::alibaba::calls::SecretInfo| json!({"arn": s.arn, "name": s.name, "tags": tags(&s.tags)});
    obs(
        o,
        "describe_tags",
        c.describe_secret(SECRET, true).await,
        describe_shape,
    );
    obs(
        o,
        "describe_plain",
        c.describe_secret(SECRET, false).await,
        describe_shape,
    );
    obs(
        o,
        "describe_missing",
        c.describe_secret("nope", true).await,
        describe_shape,
    );

    let mut pages = Vec::new();
    let mut total = 0;
    for n in 1.. {
        let p = c.list_secrets(n, 3, true).await.unwrap();
        total = p.total;
        pages.push(
            p.items
                .iter()
                .map(|s| json!([s.name, tags(&s.tags)]))
                .collect::<Vec<_>>(),
        );
        if n * 3 >= total {
            break;
        }
    }
    o.push(json!({"step": "list_secrets", "ok": {"total": total, "pages": pages}}));

    sim.fault("throttle", 1, None);
    obs(
        o,
        "throttled",
        c.get_secret_value(SECRET, Some("ACSCurrent"), None).await,
        value_of,
    );
    obs(
        o,
        "after_throttle",
        c.get_secret_value(SECRET, Some("ACSCurrent"), None).await,
        value_of,
    );
    sim.fault("error", 1, None);
    obs(
        o,
        "server_error",
        c.get_secret_value(SECRET, Some("ACSCurrent"), None).await,
        value_of,
    );

    let wrong = Credentials::new(AK, SecretString::from(format!("{SK}x")), None);
    let bad = Kms { creds: &wrong, ..c };
    obs(
        o,
        "bad_signature",
        bad.get_secret_value(SECRET, None, None).await,
        value_of,
    );
    let unknown_creds = Credentials::new("NoSuchKey", SecretString::from(SK.to_owned()), None);
    let unknown = Kms {
        creds: &unknown_creds,
        ..c
    };
    obs(
        o,
        "unknown_key",
        unknown.get_secret_value(SECRET, None, None).await,
        value_of,
    );
    out
}

fn python_transcript(python: &std::path::Path, sim: &AlibabaSim) -> Vec<Value> {
    let script = repo_root().join("tests/vendor/alibaba_conformance.py");
    let out = Command::new(python)
        .arg(&script)
        .args([&sim.url, AK, SK])
        .output()
        .expect("run the Python SDK scenario");
    assert!(
        out.status.success(),
        "the Python SDK scenario failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[tokio::test]
async fn the_vendor_sdk_and_our_client_see_the_same_behaviour() {
    let python = repo_root().join(".venv/bin/python");
    if !python.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is missing in CI: scripts/install-tools installs the Alibaba SDK",
            python.display()
        );
        eprintln!(
            "SKIPPED: {} is missing; run scripts/install-tools to install the Alibaba Cloud SDK",
            python.display()
        );
        return;
    }
    let vendor = {
        let sim = AlibabaSim::start(&[]);
        tokio::task::spawn_blocking(move || python_transcript(&python, &sim))
            .await
            .unwrap()
    };
    let sim = AlibabaSim::start(&[]);
    let ours = rust_transcript(&sim).await;
    for (i, (a, b)) in vendor.iter().zip(&ours).enumerate() {
        assert_eq!(a, b, "step {i} differs:\nvendor SDK: {a}\nour client: {b}");
    }
    assert_eq!(
        vendor.len(),
        ours.len(),
        "vendor: {vendor:#?}\nours: {ours:#?}"
    );
    // The scenario reached what it is about.
    let step = |name: &str| {
        ours.iter()
            .find(|o| o["step"] == name)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(step("get_previous")["ok"]["value"], "one");
    assert_eq!(
        step("put_different_again")["error"]["code"],
        "Rejected.ResourceExist"
    );
    assert_eq!(step("throttled")["error"]["code"], "Throttling.User");
    assert_eq!(
        step("bad_signature")["error"]["code"],
        "SignatureDoesNotMatch"
    );
}
