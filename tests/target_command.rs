//! The `command` target end to end: `rotate` runs real scripts against moto (Secrets
//! Manager) and ecs-sim (ECS). At the end, the engine with a command target on the test
//! kit's in-memory AWS (output masking), and `run_step` on its own.

mod common;
/// The core's engine-test world (one secret, four consumers, in-memory Secrets Manager
/// and ECS), shared with `crates/core/tests/suite/engine.rs`.
#[path = "../crates/core/tests/common/world.rs"]
mod memory;

use common::*;
use memory::{World, SECRET};
use rotator_core::config::Target;
use rotator_core::rotation::store::AWSPENDING;
use secrecy::SecretString;
use secret_rotator::targets::command::{run_step, CommandTarget};
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SEED: &str = r#"{"clusters":[{"name":"prod","services":[
  {"name":"api","desiredCount":1},{"name":"pdf","desiredCount":1}]}]}"#;
const INITIAL: &str = "initial-Value-1234";

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes an executable shell script.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// A script that records the sha256 of its stdin (and its step) in `<dir>/<name>.sha`.
fn recorder(dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(format!("{name}.sha"));
    script(
        dir,
        &format!("{name}.sh"),
        &format!(
            "sha256sum | cut -d' ' -f1 > '{}'\necho \"$SECRET_ROTATOR_STEP\" >> '{}'",
            out.display(),
            out.display()
        ),
    )
}

fn read_record(dir: &Path, name: &str) -> Option<(String, String)> {
    let s = std::fs::read_to_string(dir.join(format!("{name}.sha"))).ok()?;
    let mut lines = s.lines();
    Some((lines.next()?.to_owned(), lines.next()?.to_owned()))
}

fn argv(p: &Path) -> String {
    format!("[\"{}\"]", p.display())
}

fn config(target: &str, redeploy: &str) -> String {
    format!(
        r#"
[[secret]]
name = "cmd"
secret_id = "app/cmd"
every = "30d"
target = {target}
{redeploy}
stable_timeout = "1m"
"#
    )
}

fn run(dir: &Path, env: &[(String, String)]) -> (bool, String) {
    let out = rotator(&["rotate", "cmd", "--config", dir.to_str().unwrap()], env);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn set_test_and_revoke_receive_the_right_values_on_stdin() {
    let moto = Moto::start();
    let sim = EcsSim::start(&["--time-scale", "20"], SEED);
    let c = sm_client(&moto.url).await;
    create_secret(&c, "app/cmd", INITIAL, &[]).await;
    let work = tempfile::tempdir().unwrap();
    let (set, test, revoke) = (
        recorder(work.path(), "set"),
        recorder(work.path(), "test"),
        recorder(work.path(), "revoke"),
    );
    let target = format!(
        "{{ kind = \"command\", set = {}, test = {}, revoke = {}, timeout = \"10s\" }}",
        argv(&set),
        argv(&test),
        argv(&revoke)
    );
    let cfg = config(
        &target,
        r#"redeploy = [{ cluster = "prod", services = ["api", "pdf"] }]"#,
    );
    let dir = config_dir(&cfg);
    let (ok, out) = run(dir.path(), &aws_env(Some(&moto.url), Some(&sim.url)));
    assert!(ok, "{out}");

    let current = value_at(&c, "app/cmd", "AWSCURRENT").await;
    assert_ne!(current, INITIAL);
    assert_eq!(
        read_record(work.path(), "set"),
        Some((sha256_hex(&current), "set".into()))
    );
    assert_eq!(
        read_record(work.path(), "test"),
        Some((sha256_hex(&current), "test".into()))
    );
    // Revoke gets the value that was replaced.
    assert_eq!(
        read_record(work.path(), "revoke"),
        Some((sha256_hex(INITIAL), "revoke".into()))
    );
    assert!(!out.contains(&current), "the value was printed: {out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_set_shows_stderr_never_the_value_and_the_next_run_resumes() {
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    create_secret(&c, "app/cmd", INITIAL, &[]).await;
    let before = stages(&c, "app/cmd").await["AWSCURRENT"][0].clone();
    let work = tempfile::tempdir().unwrap();
    let gate = work.path().join("refuse");
    std::fs::write(&gate, "").unwrap();
    let out_file = work.path().join("set.sha");
    let set = script(
        work.path(),
        "set.sh",
        &format!(
            "v=$(cat)\nif [ -e '{gate}' ]; then\n  echo \"the backend is read-only\" >&2\n  echo \"backend rejected value $v\" >&2\n  exit 3\nfi\nprintf %s \"$v\" | sha256sum | cut -d' ' -f1 > '{out}'",
            gate = gate.display(),
            out = out_file.display()
        ),
    );
    let cfg = config(
        &format!("{{ kind = \"command\", set = {} }}", argv(&set)),
        "",
    );
    let dir = config_dir(&cfg);
    let env = aws_env(Some(&moto.url), None);

    let (ok, out) = run(dir.path(), &env);
    assert!(!ok, "set must fail: {out}");
    // The last stderr line is quoted in the error, with the value masked.
    assert!(
        out.lines()
            .any(|l| l.contains("exit status 3") && l.contains("backend rejected value ***")),
        "{out}"
    );
    let mid = stages(&c, "app/cmd").await;
    assert_eq!(
        mid["AWSCURRENT"],
        vec![before.clone()],
        "AWSCURRENT untouched"
    );
    assert_eq!(value_at(&c, "app/cmd", "AWSCURRENT").await, INITIAL);
    let pending_version = mid["AWSPENDING"][0].clone();
    let pending = value_at(&c, "app/cmd", "AWSPENDING").await;
    assert!(
        !out.contains(&pending),
        "the pending value was printed: {out}"
    );

    // Fixed: the next run resumes the same pending version (the CLI does not ask for a
    // fresh value) and finishes it.
    std::fs::remove_file(&gate).unwrap();
    let (ok, out) = run(dir.path(), &env);
    assert!(ok, "{out}");
    let end = stages(&c, "app/cmd").await;
    assert_eq!(end["AWSCURRENT"], vec![pending_version]);
    assert_eq!(end["AWSPREVIOUS"], vec![before]);
    assert!(!end.contains_key("AWSPENDING"));
    assert_eq!(version_count(&c, "app/cmd").await, 2);
    let current = value_at(&c, "app/cmd", "AWSCURRENT").await;
    assert_eq!(current, pending);
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap().trim(),
        sha256_hex(&current)
    );
}

fn alive(pid: &str) -> bool {
    // A zombie is dead for our purpose.
    std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_command_times_out_and_its_process_group_is_killed() {
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    create_secret(&c, "app/cmd", INITIAL, &[]).await;
    let work = tempfile::tempdir().unwrap();
    let pids = work.path().join("pids");
    let set = script(
        work.path(),
        "hang.sh",
        &format!(
            "echo $$ > '{p}'\nsleep 300 &\necho $! >> '{p}'\nwait",
            p = pids.display()
        ),
    );
    let cfg = config(
        &format!(
            "{{ kind = \"command\", set = {}, timeout = \"2s\" }}",
            argv(&set)
        ),
        "",
    );
    let dir = config_dir(&cfg);
    let t0 = Instant::now();
    let (ok, out) = run(dir.path(), &aws_env(Some(&moto.url), None));
    let took = t0.elapsed();
    assert!(!ok, "{out}");
    assert!(out.contains("timed out after 2s"), "{out}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert_eq!(value_at(&c, "app/cmd", "AWSCURRENT").await, INITIAL);

    let pids = std::fs::read_to_string(&pids).unwrap();
    let pids: Vec<&str> = pids.lines().collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|p| alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    for p in &pids {
        assert!(
            !alive(p),
            "process {p} (the script or its child) survived the timeout"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_revoke_when_a_consumer_rolls_back() {
    let moto = Moto::start();
    let seed = SEED.replace(
        r#"{"name":"pdf","desiredCount":1}"#,
        r#"{"name":"pdf","desiredCount":1,"behavior":"failing"}"#,
    );
    let sim = EcsSim::start(&["--time-scale", "20"], &seed);
    let c = sm_client(&moto.url).await;
    create_secret(&c, "app/cmd", INITIAL, &[]).await;
    let work = tempfile::tempdir().unwrap();
    let marker = work.path().join("revoked");
    let revoke = script(
        work.path(),
        "revoke.sh",
        &format!("cat > /dev/null\ntouch '{}'", marker.display()),
    );
    let cfg = config(
        &format!("{{ kind = \"command\", revoke = {} }}", argv(&revoke)),
        r#"redeploy = [{ cluster = "prod", services = ["api", "pdf"] }]"#,
    );
    let dir = config_dir(&cfg);
    let env = aws_env(Some(&moto.url), Some(&sim.url));
    let (ok, out) = run(dir.path(), &env);
    assert!(!ok, "{out}");
    assert!(
        out.contains("rolled back") && out.contains("prod/pdf"),
        "{out}"
    );
    assert!(
        !marker.exists(),
        "revoke ran although a consumer rolled back"
    );
    // Once the circuit breaker's rollback deployment has completed, pdf runs only tasks
    // started after the value became current: they read the new value. The next run
    // finds both consumers stable on it, forces nothing, and only then revokes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !sim
        .completions()
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["service"] == "pdf" && c["kind"] == "rolled_back")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            sim.completions()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (ok, out) = run(dir.path(), &env);
    assert!(ok, "{out}");
    assert!(out.contains("resuming"), "{out}");
    assert!(out.contains("2 already stable on the new value"), "{out}");
    assert!(marker.exists(), "the revoke did not run: {out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn command_programs_do_not_inherit_the_daemons_aws_credentials() {
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    create_secret(&c, "app/cmd", INITIAL, &[]).await;
    let work = tempfile::tempdir().unwrap();
    let seen = work.path().join("env.txt");
    let set = script(
        work.path(),
        "dump-env.sh",
        &format!("cat >/dev/null\nenv > '{}'", seen.display()),
    );
    let target = format!(
        "{{ kind = \"command\", set = {}, env = {{ TARGET_URL = \"https://partner.example\" }} }}",
        argv(&set)
    );
    let dir = config_dir(&config(&target, ""));
    let mut env = aws_env(Some(&moto.url), None);
    env.push(("AWS_SESSION_TOKEN".into(), "daemon-session-token".into()));
    env.push(("NOTIFY_SOCKET".into(), "/run/systemd/notify".into()));
    env.push(("SOME_DAEMON_SETTING".into(), "x".into()));
    let (ok, out) = run(dir.path(), &env);
    assert!(ok, "{out}");
    let seen = std::fs::read_to_string(&seen).unwrap();
    let names: std::collections::BTreeSet<&str> = seen
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        // Set by the shell itself.
        .filter(|k| !["PWD", "SHLVL", "_", "OLDPWD"].contains(k))
        .collect();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        [
            "LANG",
            "PATH",
            "SECRET_ROTATOR_SECRET",
            "SECRET_ROTATOR_STEP",
            "TARGET_URL"
        ],
        "{seen}"
    );
    assert!(!seen.contains("testing") && !seen.contains("daemon-session-token"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_value_cut_at_the_output_limit_or_encoded_is_still_masked() {
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    create_secret(&c, "app/cmd", INITIAL, &[]).await;
    let work = tempfile::tempdir().unwrap();
    // 64 KiB - 10 bytes of padding, then the value: the limit cuts it after 10 bytes.
    let set = script(
        work.path(),
        "leaky.sh",
        "v=$(cat)\nprintf '%s' \"$v\" | base64 -w0; echo\nprintf '%s' \"$v\" | od -An -tx1 | tr -d ' \\n'; echo\nhead -c 65526 /dev/zero | tr '\\0' 'x' >&2\nprintf '%s' \"$v\" >&2\nexit 1",
    );
    let target = format!("{{ kind = \"command\", set = {} }}", argv(&set));
    let dir = config_dir(&config(&target, ""));
    // stdout is logged at info.
    let mut env = aws_env(Some(&moto.url), None);
    env.push(("RUST_LOG".into(), "info".into()));
    let (ok, out) = run(dir.path(), &env);
    assert!(!ok, "{out}");
    assert!(out.contains("xxxxxxxx"), "the output was not logged: {out}");
    let pending = value_at(&c, "app/cmd", "AWSPENDING").await;
    let b64 = {
        let o = std::process::Command::new("sh")
            .args(["-c", "printf '%s' \"$V\" | base64 -w0"])
            .env("V", &pending)
            .output()
            .unwrap();
        String::from_utf8(o.stdout).unwrap()
    };
    let hex: String = pending.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(!out.contains(&b64), "base64 of the value in the output");
    assert!(!out.contains(&hex), "hex of the value in the output");
    assert!(
        !out.contains(&pending[..10]),
        "the start of the value, cut at the output limit, is in the output"
    );
}

// ---- The engine with a command target, on the test kit's in-memory AWS ----------------

fn command_target(set: &[&str]) -> Target {
    Target::new(CommandTarget {
        set: Some(set.iter().map(|s| s.to_string()).collect()),
        test: None,
        revoke: None,
        timeout: Duration::from_secs(30),
        env: Default::default(),
    })
}

/// Target commands run real processes: this test uses real time (no consumers to wait on).
#[tokio::test]
async fn target_command_output_is_masked_in_errors() {
    let mut w = World::new();
    w.cfg.redeploy = Box::default();
    // Echoes the value it was given on stderr, then fails.
    w.cfg.target = command_target(&[
        "/bin/sh",
        "-c",
        "v=$(cat); echo \"rejected: $v\" >&2; exit 3",
    ]);
    let e = w.rotate().await.expect_err("set fails");
    assert!(e.to_string().contains("rejected: ***"), "{e}");
    w.assert_no_secret_in(&e);
}

/// Target commands run real processes: this test uses real time (no consumers to wait on).
#[tokio::test]
async fn the_new_password_of_a_json_secret_is_masked_in_errors() {
    let mut w = World::new();
    w.cfg.redeploy = Box::default();
    w.store.edit(SECRET, |s| {
        s.versions[0].value = r#"{"username":"app","password":"old"}"#.into()
    });
    w.cfg.json_key = Some("password".into());
    std::sync::Arc::make_mut(&mut w.cfg.generate).exclude_punctuation = true;
    // A typical script: extracts the password and complains about it on stderr.
    w.cfg.target = command_target(&["/bin/sh", "-c", "pw=$(sed 's/.*\"password\":\"\\([^\"]*\\)\".*/\\1/'); echo \"cannot set password $pw\" >&2; exit 1"]);
    let e = w.rotate().await.expect_err("set fails");
    let pending = w.store.holder(SECRET, AWSPENDING).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&w.value(&pending)).unwrap();
    let pw = doc["password"].as_str().unwrap();
    assert!(
        !e.to_string().contains(pw),
        "the new password is shown: {e}"
    );
}

/// A rotation abandoned because its lease lapsed drops its running target command: what
/// that command started must stop too, or it would still be changing the target when the
/// next lease holder runs its own `set`.
#[tokio::test(flavor = "multi_thread")]
async fn an_abandoned_target_command_is_stopped_with_everything_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("still-running");
    // The shell starts a worker (as a real script would start its client) and waits.
    let script = format!(
        "cat >/dev/null; (sleep 1; touch {}) & wait",
        marker.display()
    );
    let c = CommandTarget {
        set: Some(vec!["/bin/sh".into(), "-c".into(), script]),
        test: None,
        revoke: None,
        timeout: Duration::from_secs(30),
        env: Default::default(),
    };
    let cfg = memory::config(&memory::SERVICES);
    let value = SecretString::from("v4lue-that-is-long-enough");
    let run = run_step(&c, "set", &value, &cfg);
    assert!(tokio::time::timeout(Duration::from_millis(300), run)
        .await
        .is_err());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !marker.exists(),
        "the abandoned command's worker kept running"
    );
}
