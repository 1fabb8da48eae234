//! The IBM store's client and IBM's own Python SDK see the same service: the scenario of
//! tests/vendor/ibm_conformance.py (the SDK against one ibm-sm-sim) and the same
//! scenario through `stores::ibm::client` (against another) must print the same
//! transcript. The SDK keeps the simulator honest about shapes; the transcript keeps our
//! client honest about the simulator (and maps errors to the same classes).
//!
//! Needs `.venv` with ibm-secrets-manager-sdk (scripts/install-tools): skipped with a
//! message when it is missing locally, a failure under CI.

mod ibm_common;

use ibm_common::{calls, faults, ops, KEY};
use secrecy::ExposeSecret;
use secret_rotator::error::{AwsError, ErrorClass};
use secret_rotator::stores::ibm::client::{IbmClient, ListQuery};
use secret_rotator::stores::ibm::types::{SecretData, SecretMeta};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::time::Duration;

const TOKEN_TTL: u64 = 3;
const TOKEN: &str = "secret_rotator_token";

fn values() -> Vec<(&'static str, Value)> {
    vec![
        ("arb1", json!("arbitrary-value-one")),
        ("arb2", json!("arbitrary-value-two")),
        ("kv1", json!({"user": "app", "password": "kv-password-one"})),
        ("kv2", json!({"user": "app", "password": "kv-password-two"})),
        ("pw1", json!("user-password-one")),
        ("pw2", json!("user-password-two")),
        ("page", json!("page-value")),
    ]
}

fn value(name: &str) -> Value {
    values()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .expect("known value")
}

fn name_of(v: &Value) -> &'static str {
    values()
        .into_iter()
        .find(|(_, k)| k == v)
        .map_or("unknown", |(n, _)| n)
}

fn data_obs(d: &SecretData) -> Map<String, Value> {
    let mut m = Map::new();
    match d {
        SecretData::Payload(p) => {
            m.insert("payload".into(), json!(name_of(&json!(p.expose_secret()))));
        }
        SecretData::Data(t) => {
            let parsed: Value = serde_json::from_str(t.expose_secret()).unwrap_or_default();
            m.insert("data".into(), json!(name_of(&parsed)));
        }
        SecretData::Credentials { username, password } => {
            m.insert("username".into(), json!(username));
            m.insert(
                "password".into(),
                json!(name_of(&json!(password.expose_secret()))),
            );
        }
    }
    m
}

fn meta_obs(m: &SecretMeta) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("type".into(), json!(m.secret_type));
    o.insert("group".into(), json!(m.group_id));
    o.insert("versions_total".into(), json!(m.versions_total));
    o.insert(
        "custom_metadata".into(),
        Value::Object(m.custom_metadata.clone()),
    );
    o
}

fn class(e: &AwsError) -> &'static str {
    match e.class {
        ErrorClass::NotFound => "not_found",
        ErrorClass::AccessDenied => "access_denied",
        ErrorClass::Throttled => "throttled",
        ErrorClass::Conflict => "conflict",
        ErrorClass::Invalid => "invalid",
        ErrorClass::Transient => "transient",
        ErrorClass::Setup => "setup",
        ErrorClass::Other => "other",
    }
}

/// One observation line, keys sorted as Python's `json.dumps(sort_keys=True)`.
struct Transcript(Vec<String>);

impl Transcript {
    fn emit(&mut self, step: &str, fields: Map<String, Value>) {
        let mut all: std::collections::BTreeMap<String, Value> = fields.into_iter().collect();
        all.insert("step".into(), json!(step));
        self.0
            .push(canonical(&serde_json::to_value(all).unwrap_or_default()));
    }
}

/// JSON with object keys sorted at every level.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<_> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), canonical(&m[*k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

macro_rules! obs {
    ($($k:literal : $v:expr),* $(,)?) => {{
        let mut m = Map::new();
        $( m.insert($k.to_owned(), json!($v)); )*
        m
    }};
}

fn merge(mut a: Map<String, Value>, b: Map<String, Value>) -> Map<String, Value> {
    a.extend(b);
    a
}

fn token_of(m: &Map<String, Value>) -> Value {
    m.get(TOKEN).cloned().unwrap_or(Value::Null)
}

/// The scenario of tests/vendor/ibm_conformance.py, through our client.
async fn rust_scenario(url: &str) -> Vec<String> {
    let store = ibm_common::store(url, KEY, false);
    let c: &IbmClient = store.client();
    let mut t = Transcript(Vec::new());
    let mut ids = std::collections::HashMap::new();

    let m = c
        .create_secret(url, &json!({"name": "conf-arb", "secret_type": "arbitrary", "payload": value("arb1"), "custom_metadata": {"team": "payments"}, "version_custom_metadata": {TOKEN: "tok-a1"}}))
        .await
        .expect("create arbitrary");
    ids.insert("arb", m.id.clone());
    t.emit("create_arbitrary", merge(obs!("ok": true), meta_obs(&m)));
    let m = c
        .create_secret(url, &json!({"name": "conf-kv", "secret_type": "kv", "data": value("kv1"), "version_custom_metadata": {TOKEN: "tok-k1"}}))
        .await
        .expect("create kv");
    ids.insert("kv", m.id.clone());
    t.emit("create_kv", merge(obs!("ok": true), meta_obs(&m)));
    let m = c
        .create_secret(url, &json!({"name": "conf-up", "secret_type": "username_password", "username": "app", "password": value("pw1"), "version_custom_metadata": {TOKEN: "tok-u1"}}))
        .await
        .expect("create username_password");
    ids.insert("up", m.id.clone());
    t.emit(
        "create_userpass",
        merge(obs!("ok": true, "auto_rotate": m.auto_rotate), meta_obs(&m)),
    );

    match c
        .create_secret(
            url,
            &json!({"name": "conf-arb", "secret_type": "arbitrary", "payload": "x"}),
        )
        .await
    {
        Ok(_) => t.emit("duplicate_name", obs!("ok": true)),
        Err(e) => t.emit("duplicate_name", obs!("ok": false, "error": class(&e))),
    }

    let protos = [
        (
            "arb",
            json!({"payload": value("arb2"), "version_custom_metadata": {TOKEN: "tok-a2"}}),
        ),
        (
            "kv",
            json!({"data": value("kv2"), "version_custom_metadata": {TOKEN: "tok-k2"}}),
        ),
        (
            "up",
            json!({"password": value("pw2"), "version_custom_metadata": {TOKEN: "tok-u2"}}),
        ),
    ];
    for (kind, proto) in &protos {
        let v = c
            .create_version(url, &ids[kind], proto)
            .await
            .expect("create version");
        t.emit(
            "create_version",
            obs!("kind": kind, "ok": true, "alias": v.alias, "token": token_of(&v.custom_metadata)),
        );
    }

    for kind in ["arb", "kv", "up"] {
        for alias in ["current", "previous"] {
            let v = c
                .get_version(url, &ids[kind], alias)
                .await
                .expect("read alias");
            t.emit(
                "read_alias",
                merge(
                    obs!("kind": kind, "alias": alias, "token": token_of(&v.meta.custom_metadata)),
                    data_obs(&v.data),
                ),
            );
        }
    }

    let listed = c
        .list_versions(url, &ids["arb"])
        .await
        .expect("list versions");
    let mut rows: Vec<Value> = listed
        .iter()
        .map(|v| json!({"alias": v.alias, "token": token_of(&v.custom_metadata), "payload_available": v.payload_available}))
        .collect();
    rows.sort_by_key(|r| r["token"].as_str().unwrap_or("").to_owned());
    t.emit(
        "list_versions",
        obs!("total": listed.len(), "versions": rows),
    );
    let first = listed
        .iter()
        .find(|v| v.custom_metadata.get(TOKEN) == Some(&json!("tok-a1")))
        .expect("first version");
    let v = c
        .get_version(url, &ids["arb"], &first.id)
        .await
        .expect("read by id");
    t.emit(
        "read_by_id",
        merge(obs!("alias": v.meta.alias), data_obs(&v.data)),
    );

    let s = c.get_secret(url, &ids["up"]).await.expect("get secret");
    t.emit("get_secret", merge(meta_obs(&s.meta), data_obs(&s.data)));

    for n in 0..3 {
        c.create_secret(url, &json!({"name": format!("conf-page-{n}"), "secret_type": "arbitrary", "payload": value("page")}))
            .await
            .expect("create page secret");
    }
    let (mut names, mut sizes, mut offset) = (Vec::new(), Vec::new(), 0);
    let total = loop {
        let q = ListQuery {
            offset,
            limit: 2,
            search: Some("conf-"),
            groups: vec!["default"],
            secret_types: vec![],
        };
        let page = c.list_secrets(url, &q).await.expect("list page");
        sizes.push(page.secrets.len());
        names.extend(page.secrets.iter().map(|s| s.name.clone()));
        match page.next_offset {
            Some(n) => offset = n,
            None => break page.total_count,
        }
    };
    names.sort();
    t.emit(
        "list_paging",
        obs!("total": total, "page_sizes": sizes, "names": names),
    );
    let q = ListQuery {
        offset: 0,
        limit: 200,
        search: Some("conf-page"),
        groups: vec![],
        secret_types: vec!["arbitrary"],
    };
    let page = c.list_secrets(url, &q).await.expect("list filtered");
    let mut names: Vec<String> = page.secrets.iter().map(|s| s.name.clone()).collect();
    names.sort();
    t.emit(
        "list_filtered",
        obs!("total": page.total_count, "names": names),
    );

    let m = c
        .update_secret_metadata(
            url,
            &ids["arb"],
            &json!({"custom_metadata": {"owner": "ops"}}),
        )
        .await
        .expect("patch");
    t.emit(
        "patch_custom_metadata",
        obs!("custom_metadata": m.custom_metadata),
    );
    let m = c
        .update_secret_metadata(
            url,
            &ids["arb"],
            &json!({"custom_metadata": {"team": null}}),
        )
        .await
        .expect("patch");
    t.emit(
        "patch_custom_metadata_remove",
        obs!("custom_metadata": m.custom_metadata),
    );

    let v = c
        .update_version_metadata(
            url,
            &ids["arb"],
            "current",
            &json!({"version_custom_metadata": {"reviewed": "yes"}}),
        )
        .await
        .expect("patch version");
    t.emit(
        "patch_version_metadata",
        obs!("version_custom_metadata": v.custom_metadata),
    );
    let v = c
        .get_version_metadata(url, &ids["arb"], "previous")
        .await
        .expect("version metadata");
    t.emit(
        "version_metadata",
        obs!("alias": v.alias, "version_custom_metadata": v.custom_metadata),
    );

    match c
        .get_secret(url, "00000000-0000-0000-0000-000000000001")
        .await
    {
        Ok(_) => t.emit("missing_secret", obs!("ok": true)),
        Err(e) => t.emit("missing_secret", obs!("ok": false, "error": class(&e))),
    }

    let before = ops(url, "get_secret_metadata");
    faults(url, 429, 1, 1);
    let m = c
        .get_secret_metadata(url, &ids["kv"])
        .await
        .expect("throttled read");
    t.emit("throttled_read", obs!("ok": true, "attempts": ops(url, "get_secret_metadata") - before, "type": m.secret_type));
    let before = ops(url, "get_secret_metadata");
    faults(url, 503, 1, 1);
    let m = c
        .get_secret_metadata(url, &ids["kv"])
        .await
        .expect("5xx read");
    t.emit("server_error_read", obs!("ok": true, "attempts": ops(url, "get_secret_metadata") - before, "type": m.secret_type));
    let before = ops(url, "get_secret_metadata");
    faults(url, 429, 5, 1);
    match c.get_secret_metadata(url, &ids["kv"]).await {
        Ok(_) => t.emit("throttled_surfaced", obs!("ok": true)),
        Err(e) => t.emit("throttled_surfaced", obs!("ok": false, "error": class(&e), "attempts": ops(url, "get_secret_metadata") - before)),
    }

    let exchanges = calls(url)["iam_exchanges"].as_u64().unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(TOKEN_TTL * 1000 + 500)).await;
    c.get_secret_metadata(url, &ids["kv"])
        .await
        .expect("read after expiry");
    let after = calls(url);
    t.emit(
        "token_refresh",
        obs!("ok": true, "exchanged": after["iam_exchanges"].as_u64().unwrap_or(0) > exchanges, "rejected_expired": after["rejected_expired"], "rejected_unknown": after["rejected_unknown"]),
    );

    let bad = ibm_common::store(url, "not-a-key", false);
    match bad.client().get_secret_metadata(url, &ids["kv"]).await {
        Ok(_) => t.emit("bad_api_key", obs!("ok": true)),
        Err(e) => t.emit("bad_api_key", obs!("ok": false, "error": class(&e))),
    }

    let q = ListQuery {
        offset: 0,
        limit: 200,
        search: Some("conf-page-0"),
        groups: vec![],
        secret_types: vec![],
    };
    let victim = c.list_secrets(url, &q).await.expect("find").secrets[0]
        .id
        .clone();
    c.delete_secret(url, &victim).await.expect("delete");
    t.emit("delete", obs!("ok": true));
    match c.get_secret_metadata(url, &victim).await {
        Ok(_) => t.emit("deleted_read", obs!("ok": true)),
        Err(e) => t.emit("deleted_read", obs!("ok": false, "error": class(&e))),
    }
    t.0
}

fn python() -> Option<PathBuf> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let has_sdk = venv.exists()
        && std::process::Command::new(&venv)
            .args(["-c", "import ibm_secrets_manager_sdk"])
            .output()
            .is_ok_and(|o| o.status.success());
    if has_sdk {
        return Some(venv);
    }
    let msg = ".venv with ibm-secrets-manager-sdk is missing: run scripts/install-tools";
    assert!(
        std::env::var_os("CI").is_none(),
        "{msg} (CI must run this test)"
    );
    eprintln!("SKIPPED: {msg}");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vendor_sdk_and_our_client_see_the_same_service() {
    let Some(py) = python() else { return };
    let for_python = ibm_common::sim(TOKEN_TTL).await;
    let for_rust = ibm_common::sim(TOKEN_TTL).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vendor/ibm_conformance.py");
    let url = for_python.url.clone();
    // The SDK's scenario runs beside ours: each waits ~8 s on Retry-After and expiry.
    let vendor = tokio::task::spawn_blocking(move || {
        std::process::Command::new(py)
            .arg(script)
            .env("IBM_SIM_URL", &url)
            .env("IBM_API_KEY", KEY)
            .output()
            .expect("run the vendor scenario")
    });
    let ours = rust_scenario(&for_rust.url).await;
    let out = vendor.await.expect("vendor scenario thread");
    assert!(
        out.status.success(),
        "the vendor scenario failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| canonical(&serde_json::from_str(l).expect("a JSON observation")))
        .collect();
    assert_eq!(
        theirs.len(),
        ours.len(),
        "steps differ:\nSDK:\n{}\nours:\n{}",
        theirs.join("\n"),
        ours.join("\n")
    );
    for (a, b) in theirs.iter().zip(&ours) {
        assert_eq!(a, b, "the transcripts differ (SDK first, ours second)");
    }
}
