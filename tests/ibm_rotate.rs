//! `rotate` of an IBM Cloud Secrets Manager `username_password` secret against ibm-sm-sim
//! (issue 17): the password rotates, the username stays, a command consumer restarts the
//! application, and a kill -9 at every step followed by a rerun leaves exactly one new
//! current value and no pending holder. No test prints a secret value.

mod common;
mod ibm_common;

use common::rotator_bin;
use ibm_common::{secret_ref, store, KEY};
use secrecy::ExposeSecret;
use secret_rotator::ids::SecretRef;
use secret_rotator::rotation::store::{SecretStore, Select, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use secret_rotator::stores::ibm::IbmStore;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};

const INITIAL: &str = "initial-password-0";

async fn new_secret(st: &IbmStore, url: &str, name: &str) -> SecretRef {
    let m = st
        .client()
        .create_secret(
            url,
            &json!({"secret_type": "username_password", "name": name, "username": "reports_app", "password": INITIAL}),
        )
        .await
        .expect("create secret");
    secret_ref(url, &m.id)
}

/// A configuration of one IBM secret whose consumer is a program that records each
/// restart in `restarts` (one line per run, never the value).
fn config(dir: &Path, url: &str, id: &str, restarts: &Path) {
    let restart = dir.join("restart.sh");
    std::fs::write(
        &restart,
        format!(
            "#!/bin/sh\necho \"$SECRET_ROTATOR_SECRET\" >> {}\n",
            restarts.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &restart,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let toml = format!(
        r#"
[ibm]
endpoint = "{url}"
iam_endpoint = "{url}"
api_key_env = "IBM_ROTATE_TEST_KEY"

[[secret]]
name = "reports-db"
store = "ibm"
secret_id = "{id}"
every = "30d"
json_key = "password"
redeploy = [{{ command = ["{}"], timeout = "30s" }}]
"#,
        restart.display()
    );
    std::fs::write(dir.join("secrets.toml"), toml).unwrap();
}

fn rotate(bin: &Path, dir: &Path, crash_at: Option<&str>) -> Output {
    let mut c = Command::new(bin);
    c.args(["rotate", "reports-db", "--config"])
        .arg(dir)
        .env("IBM_ROTATE_TEST_KEY", KEY)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1");
    if let Some(p) = crash_at {
        c.env("SECRET_ROTATOR_CRASH_AT", p);
    }
    c.output().expect("run secret-rotator")
}

/// `rotate` with the normal binary, off the runtime's threads.
async fn rotate_now(dir: &Path) -> Output {
    let d = dir.to_owned();
    tokio::task::spawn_blocking(move || rotate(&rotator_bin(), &d, None))
        .await
        .unwrap()
}

fn doc(v: &str) -> Value {
    serde_json::from_str(v).expect("a username_password value is JSON")
}

/// The end state of one rotation: a new password under the same username is current, the
/// initial one previous, exactly two versions, no pending holder, nothing leaked.
async fn assert_rotated_once(st: &IbmStore, url: &str, r: &SecretRef, out: &Output, what: &str) {
    let (_, current) = st.get_value(r, Select::Stage(AWSCURRENT)).await.unwrap();
    let (_, previous) = st.get_value(r, Select::Stage(AWSPREVIOUS)).await.unwrap();
    let (current, previous) = (doc(current.expose_secret()), doc(previous.expose_secret()));
    assert_eq!(current["username"], "reports_app", "{what}");
    assert!(
        previous["password"] == INITIAL,
        "{what}: the previous version is not the initial password"
    );
    assert!(
        current["password"] != INITIAL,
        "{what}: the password did not change"
    );
    let meta = st.describe(r).await.unwrap();
    assert_eq!(meta.versions.len(), 2, "{what}: exactly one new version");
    assert!(
        meta.version_with(AWSPENDING).is_none(),
        "{what}: a pending holder is left"
    );
    let total = st
        .client()
        .get_secret_metadata(url, r.id.as_str())
        .await
        .unwrap()
        .versions_total;
    assert_eq!(total, 2, "{what}: IBM counts one new version");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let password = current["password"].as_str().unwrap_or_default();
    assert!(
        !password.is_empty() && !text.contains(password),
        "{what}: the new password is in the output"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_an_ibm_username_password_secret() {
    let sim = ibm_common::sim(3600).await;
    let st = store(&sim.url, KEY, false);
    let r = new_secret(&st, &sim.url, "reports-db").await;
    let dir = tempfile::tempdir().unwrap();
    let restarts = dir.path().join("restarts.log");
    config(dir.path(), &sim.url, r.id.as_str(), &restarts);

    let bin = rotator_bin();
    let out = tokio::task::spawn_blocking({
        let d = dir.path().to_owned();
        move || rotate(&bin, &d, None)
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "rotate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_rotated_once(&st, &sim.url, &r, &out, "first rotation").await;
    let runs = std::fs::read_to_string(&restarts).unwrap_or_default();
    assert_eq!(
        runs.lines().count(),
        1,
        "the consumer restarted once: {runs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_at_every_step_then_a_rerun_leaves_one_new_value() {
    let sim = ibm_common::sim(3600).await;
    let st = store(&sim.url, KEY, false);
    for (i, point) in common::CRASH_POINTS.into_iter().enumerate() {
        let r = new_secret(&st, &sim.url, &format!("reports-db-{i}")).await;
        let dir = tempfile::tempdir().unwrap();
        let restarts = dir.path().join("restarts.log");
        config(dir.path(), &sim.url, r.id.as_str(), &restarts);
        let d = dir.path().to_owned();
        let rerun = tokio::task::spawn_blocking(move || {
            common::crash_then_rerun(point, |bin, at| rotate(bin, &d, at))
        })
        .await
        .unwrap();
        assert_rotated_once(&st, &sim.url, &r, &rerun, point).await;
        // The consumer restarted at least once after the value became current.
        let runs = std::fs::read_to_string(&restarts).unwrap_or_default();
        assert!(
            runs.lines().count() >= 1,
            "{point}: no restart after the crash"
        );
    }
}

/// IBM lets only the Manager role delete a secret. With Writer, the finish cannot delete
/// the pending holder: the rotation must still finish and restart its consumers (the
/// holder is emptied of its token instead), or the database would hold a password no
/// restarted consumer gets (adversarial review of issue 17, finding 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_the_key_may_not_delete_does_not_stop_the_rotation() {
    let sim = ibm_common::sim(3600).await;
    let st = store(&sim.url, KEY, false);
    let r = new_secret(&st, &sim.url, "reports-db").await;
    let dir = tempfile::tempdir().unwrap();
    let restarts = dir.path().join("restarts.log");
    config(dir.path(), &sim.url, r.id.as_str(), &restarts);
    let (status, _) = ibm_common::admin(
        &sim.url,
        "POST",
        "/_sim/faults",
        Some(json!({"status": 403, "count": 50, "operation": "delete_secret"})),
    );
    assert_eq!(status, 200);
    let out = rotate_now(dir.path()).await;
    assert!(
        out.status.success(),
        "rotate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_rotated_once(&st, &sim.url, &r, &out, "holder not deletable").await;
    let runs = std::fs::read_to_string(&restarts).unwrap_or_default();
    assert_eq!(
        runs.lines().count(),
        1,
        "the consumer restarted once: {runs}"
    );
}

/// One HTTP/1.0 exchange with the simulator: (status, JSON body or Null).
fn http(url: &str, method: &str, path: &str, headers: &str, body: &str) -> (u16, Value) {
    use std::io::{Read, Write};
    let host = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).expect("connect to ibm-sm-sim");
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let json = out
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

/// Locks a version of secret `id` the way an application following IBM's advice does.
fn lock_version(url: &str, id: &str, version: &str) {
    let (status, token) = http(
        url,
        "POST",
        "/identity/token",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        &format!("grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey={KEY}"),
    );
    assert_eq!(status, 200, "token: {token}");
    let bearer = token["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (status, body) = http(
        url,
        "POST",
        &format!("/api/v2/secrets/{id}/versions/{version}/locks_bulk"),
        &format!("Authorization: Bearer {bearer}\r\nContent-Type: application/json\r\n"),
        r#"{"locks":[{"name":"reports-app-in-use"}]}"#,
    );
    assert!(status == 200 || status == 201, "lock: {status} {body}");
}

/// IBM refuses a new version while the previous one is locked. That must be found before
/// the target gets the new value, not at the finish (where the value would already be
/// set on the target and could never become current: adversarial review of issue 17,
/// finding 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_previous_version_is_refused_before_anything_changes() {
    let sim = ibm_common::sim(3600).await;
    let st = store(&sim.url, KEY, false);
    let r = new_secret(&st, &sim.url, "reports-db").await;
    let dir = tempfile::tempdir().unwrap();
    let restarts = dir.path().join("restarts.log");
    config(dir.path(), &sim.url, r.id.as_str(), &restarts);
    let first = rotate_now(dir.path()).await;
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    lock_version(&sim.url, r.id.as_str(), "previous");

    let second = rotate_now(dir.path()).await;
    let err = String::from_utf8_lossy(&second.stderr).to_string();
    assert!(
        !second.status.success(),
        "the second rotation cannot finish: {err}"
    );
    assert!(err.contains("locked"), "the error says why: {err}");
    let meta = st.describe(&r).await.unwrap();
    assert!(
        meta.version_with(AWSPENDING).is_none(),
        "no pending value was written: {err}"
    );
    assert_eq!(meta.versions.len(), 2, "no version was added");
}

/// A holder emptied because the key could not delete it outlives its secret; a secret
/// deleted and made again under the same name must still rotate (second review of issue
/// 17, F2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_holder_of_a_deleted_secret_does_not_block_its_successor() {
    let sim = ibm_common::sim(3600).await;
    let st = store(&sim.url, KEY, false);
    let (status, _) = ibm_common::admin(
        &sim.url,
        "POST",
        "/_sim/faults",
        Some(json!({"status": 403, "count": 1, "operation": "delete_secret"})),
    );
    assert_eq!(status, 200);
    let first = new_secret(&st, &sim.url, "reports-db").await;
    let dir = tempfile::tempdir().unwrap();
    let restarts = dir.path().join("restarts.log");
    config(dir.path(), &sim.url, first.id.as_str(), &restarts);
    let out = rotate_now(dir.path()).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Replaced (say by Terraform): same name and group, a new id.
    st.client()
        .delete_secret(&sim.url, first.id.as_str())
        .await
        .expect("delete");
    let second = new_secret(&st, &sim.url, "reports-db").await;
    config(dir.path(), &sim.url, second.id.as_str(), &restarts);
    let out = rotate_now(dir.path()).await;
    assert!(
        out.status.success(),
        "the successor rotates: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_rotated_once(&st, &sim.url, &second, &out, "successor").await;
}
