//! The `redis` target end to end: `rotate` against moto (Secrets Manager), ecs-sim (ECS)
//! and a real Redis started per test (Debian's redis-server; see common::redis).

mod common;

use common::redis::{sha256_hex, Redis, Setup, ADMIN_PASSWORD, ADMIN_USER};
use common::*;
use serde_json::Value;
use std::path::Path;

const SEED: &str = r#"{"clusters":[{"name":"prod","services":[
  {"name":"api","desiredCount":1}]}]}"#;
const USER: &str = "app";
const INITIAL_PW: &str = "init P@ss'w\"o\\rd:/;$1";
const GENERATE: &str =
    r#"generate = { length = 40, exclude_characters = "", include_space = true }"#;

fn target(port: u16, user: &str, extra: &str) -> String {
    format!(
        r#"{{ kind = "redis", host = "127.0.0.1", port = {port}, username = "{user}", admin_secret_id = "redis/admin", sslmode = "disable"{extra} }}"#
    )
}

fn secret_config(name: &str, id: &str, target: &str, redeploy: bool) -> String {
    format!(
        r#"
[[secret]]
name = "{name}"
secret_id = "{id}"
every = "30d"
{GENERATE}
target = {target}
{}
stable_timeout = "1m"
"#,
        if redeploy {
            r#"redeploy = [{ cluster = "prod", services = ["api"] }]"#
        } else {
            ""
        }
    )
}

fn create_user(r: &Redis, user: &str, password: &str) {
    let rule = format!(">{password}");
    assert_eq!(
        r.admin(&["ACL", "SETUSER", user, "on", &rule, "~*", "+@all"]),
        "OK"
    );
}

async fn setup(r: &Redis, c: &aws_sdk_secretsmanager::Client, user: &str, id: &str) {
    create_user(r, user, INITIAL_PW);
    create_secret(c, id, &r.secret_json(user, INITIAL_PW), &[]).await;
}

async fn admin_secret(c: &aws_sdk_secretsmanager::Client, r: &Redis) {
    create_secret(
        c,
        "redis/admin",
        &r.secret_json(ADMIN_USER, ADMIN_PASSWORD),
        &[],
    )
    .await;
}

fn rotate(dir: &Path, name: &str, env: &[(String, String)]) -> (bool, String) {
    let out = rotator(&["rotate", name, "--config", dir.to_str().unwrap()], env);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn crash_rotate(dir: &Path, name: &str, env: &[(String, String)], point: &str) {
    let crash_bin = repo_root().join("target/failpoints/secret-rotator");
    assert!(
        crash_bin.exists(),
        "{} missing: scripts/test builds it (cargo build --features failpoints)",
        crash_bin.display()
    );
    let mut cmd = std::process::Command::new(&crash_bin);
    cmd.args(["rotate", name, "--config", dir.to_str().unwrap()])
        .env("SECRET_ROTATOR_CRASH_AT", point);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        !out.status.success(),
        "the crash build must abort at {point}"
    );
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).expect("JSON secret")
}

fn pw(v: &Value) -> String {
    v["password"].as_str().expect("password").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn both_passwords_work_until_revoke_then_only_the_new_one_and_none_reaches_monitor_or_slowlog(
) {
    let Some(r) = Redis::start() else { return };
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    admin_secret(&c, &r).await;
    setup(&r, &c, USER, "redis/app").await;
    let monitor_file = r.path("monitor.txt");
    let mut monitor = r.monitor(&monitor_file);
    let dir = config_dir(&secret_config(
        "cache",
        "redis/app",
        &target(r.port, USER, ""),
        false,
    ));
    let env = aws_env(Some(&moto.url), None);

    // Stopped after AWSCURRENT moved, before the consumers are confirmed and revoke runs.
    crash_rotate(dir.path(), "cache", &env, "after-remove-pending");
    let new_pw = pw(&json(&value_at(&c, "redis/app", "AWSCURRENT").await));
    assert_ne!(new_pw, INITIAL_PW);
    assert!(r.can_login(USER, &new_pw), "the new password works");
    assert!(
        r.can_login(USER, INITIAL_PW),
        "the old one too, until revoke"
    );

    // The rerun resumes, finds every consumer stable, and revokes the old password.
    let (ok, out) = rotate(dir.path(), "cache", &env);
    assert!(ok, "{out}");
    assert!(r.can_login(USER, &new_pw));
    assert!(!r.can_login(USER, INITIAL_PW), "revoked");
    let getuser = r.admin(&["ACL", "GETUSER", USER]);
    assert!(
        getuser.contains(&sha256_hex(&new_pw)) && !getuser.contains(&sha256_hex(INITIAL_PW)),
        "{getuser}"
    );
    assert!(!out.contains(&new_pw));

    let _ = monitor.kill();
    let _ = monitor.wait();
    let monitored = std::fs::read_to_string(&monitor_file).unwrap();
    assert!(
        monitored.contains("\"AUTH\""),
        "MONITOR saw the rotation: {monitored}"
    );
    let slowlog = r.admin(&["SLOWLOG", "GET", "10000"]);
    assert!(
        slowlog.contains("ACL") || slowlog.contains("(redacted)"),
        "{slowlog}"
    );
    for (what, text) in [("MONITOR", &monitored), ("SLOWLOG", &slowlog)] {
        for p in [new_pw.as_str(), INITIAL_PW, ADMIN_PASSWORD] {
            assert!(!text.contains(p), "a password reached {what}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_with_a_redeploy_revokes_the_old_password_once_stable() {
    let Some(r) = Redis::start() else { return };
    let moto = Moto::start();
    let sim = EcsSim::start(&["--time-scale", "20"], SEED);
    let c = sm_client(&moto.url).await;
    admin_secret(&c, &r).await;
    // Unknown keys are kept.
    create_user(&r, USER, INITIAL_PW);
    let mut initial = json(&r.secret_json(USER, INITIAL_PW));
    initial["db"] = 3.into();
    create_secret(&c, "redis/app", &initial.to_string(), &[]).await;
    let dir = config_dir(&secret_config(
        "cache",
        "redis/app",
        &target(r.port, USER, ""),
        true,
    ));
    let (ok, out) = rotate(
        dir.path(),
        "cache",
        &aws_env(Some(&moto.url), Some(&sim.url)),
    );
    assert!(ok, "{out}");
    let now = json(&value_at(&c, "redis/app", "AWSCURRENT").await);
    assert_eq!(now["db"], 3);
    assert_eq!(now["username"], USER);
    let keys: Vec<_> = now.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["host", "port", "username", "password", "db"]);
    assert!(r.can_login(USER, &pw(&now)));
    assert!(!r.can_login(USER, INITIAL_PW));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_at_each_step_resumes_to_a_working_password() {
    let Some(r) = Redis::start() else { return };
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    admin_secret(&c, &r).await;
    let env = aws_env(Some(&moto.url), None);
    for (i, point) in [
        "after-create",
        "after-set",
        "after-test",
        "after-move-current",
        "after-remove-pending",
    ]
    .into_iter()
    .enumerate()
    {
        let user = format!("app{i}");
        let id = format!("redis/app{i}");
        setup(&r, &c, &user, &id).await;
        let dir = config_dir(&secret_config(
            "cache",
            &id,
            &target(r.port, &user, ""),
            false,
        ));
        crash_rotate(dir.path(), "cache", &env, point);
        let (ok, out) = rotate(dir.path(), "cache", &env);
        assert!(ok, "{point}: {out}");
        let now = pw(&json(&value_at(&c, &id, "AWSCURRENT").await));
        assert!(r.can_login(&user, &now), "{point}: AWSCURRENT logs in");
        assert!(
            !r.can_login(&user, INITIAL_PW),
            "{point}: the old one was revoked"
        );
        let getuser = r.admin(&["ACL", "GETUSER", &user]);
        assert!(getuser.contains(&sha256_hex(&now)), "{point}: {getuser}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_acl_setuser_leaves_awscurrent_untouched_and_refusals_happen_before_connecting() {
    let Some(r) = Redis::start() else { return };
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    setup(&r, &c, USER, "redis/app").await;
    // An admin that may not run ACL commands.
    assert_eq!(
        r.admin(&["ACL", "SETUSER", "weak", "on", ">weak-pw", "~*", "+@all", "-@admin"]),
        "OK"
    );
    create_secret(&c, "redis/admin", &r.secret_json("weak", "weak-pw"), &[]).await;
    let before = stages(&c, "redis/app").await["AWSCURRENT"][0].clone();
    let dir = config_dir(&secret_config(
        "cache",
        "redis/app",
        &target(r.port, USER, ""),
        false,
    ));
    let env = aws_env(Some(&moto.url), None);
    let (ok, out) = rotate(dir.path(), "cache", &env);
    assert!(!ok, "{out}");
    assert!(
        out.contains("step set (failed): redis: ACL GETUSER app failed: NOPERM"),
        "{out}"
    );
    assert_eq!(stages(&c, "redis/app").await["AWSCURRENT"], vec![before]);
    assert!(r.can_login(USER, INITIAL_PW));
    assert!(!out.contains("weak-pw"));

    // The admin gets its rights back: the next run finishes.
    assert_eq!(r.admin(&["ACL", "SETUSER", "weak", "+@admin"]), "OK");
    let (ok, out) = rotate(dir.path(), "cache", &env);
    assert!(ok, "{out}");

    // A secret naming another user is refused before anything is sent.
    create_user(&r, "other", "other-pw");
    create_secret(&c, "redis/other", &r.secret_json("other", "other-pw"), &[]).await;
    let dir = config_dir(&secret_config(
        "other",
        "redis/other",
        &target(r.port, USER, ""),
        false,
    ));
    let (ok, out) = rotate(dir.path(), "other", &env);
    assert!(!ok);
    assert!(
        out.contains("names user \"other\" but this target may only touch \"app\""),
        "{out}"
    );
    assert!(r.can_login("other", "other-pw"));
}

#[tokio::test(flavor = "multi_thread")]
async fn check_remote_dry_run_and_no_password_at_trace_level() {
    let Some(r) = Redis::start() else { return };
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    admin_secret(&c, &r).await;
    setup(&r, &c, USER, "redis/app").await;
    create_secret(&c, "redis/ghost", &r.secret_json("ghost", "x"), &[]).await;
    let env = aws_env(Some(&moto.url), None);
    let good = secret_config("cache", "redis/app", &target(r.port, USER, ""), false);
    let dir = config_dir(&good);
    let d = dir.path().to_str().unwrap();
    let out = rotator(&["check", "--remote", "--config", d], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let dir2 = config_dir(&secret_config(
        "ghost",
        "redis/ghost",
        &target(r.port, "ghost", ""),
        false,
    ));
    let out = rotator(
        &[
            "check",
            "--remote",
            "--config",
            dir2.path().to_str().unwrap(),
        ],
        &env,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("ghost: target redis: ACL user \"ghost\" does not exist"),
        "{err}"
    );

    let out = rotator(&["rotate", "cache", "--dry-run", "--config", d], &env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        stdout.contains("ACL SETUSER app #<sha256 of the new password>"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ACL SETUSER app !<sha256 of the previous password>"),
        "{stdout}"
    );
    assert_eq!(version_count(&c, "redis/app").await, 1);

    // Two rotations at RUST_LOG=trace, JSON and text: no password, no hash.
    let mut captured = String::new();
    for format in ["json", "text"] {
        let mut cmd = std::process::Command::new(rotator_bin());
        cmd.args(["rotate", "cache", "--config", d, "--log-format", format])
            .env("RUST_LOG", "trace");
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        captured.push_str(&String::from_utf8_lossy(&out.stdout));
        captured.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    let mut secrets = vec![INITIAL_PW.to_owned(), ADMIN_PASSWORD.to_owned()];
    for v in c
        .list_secret_version_ids()
        .secret_id("redis/app")
        .send()
        .await
        .unwrap()
        .versions()
    {
        let s = c
            .get_secret_value()
            .secret_id("redis/app")
            .version_id(v.version_id().unwrap())
            .send()
            .await
            .unwrap();
        secrets.push(pw(&json(s.secret_string().unwrap())));
    }
    assert!(secrets.len() >= 4, "{captured}");
    let hashes: Vec<String> = secrets.iter().map(|s| sha256_hex(s)).collect();
    for s in secrets.iter().chain(&hashes) {
        let escaped = serde_json::to_string(s).unwrap();
        assert!(
            !captured.contains(s.as_str()) && !captured.contains(escaped.trim_matches('"')),
            "a password or its hash leaked at RUST_LOG=trace"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_is_verified_by_default() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, crt, key) = make_test_certs(certs.path(), "IP:127.0.0.1");
    let tls_port = free_port();
    let Some(r) = Redis::start_with(&format!(
        "tls-port {tls_port}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\ntls-auth-clients no",
        crt.display(),
        key.display(),
        ca.display()
    )) else {
        return;
    };
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    create_user(&r, USER, INITIAL_PW);
    let secret = |port: u16| {
        serde_json::json!({"host": "127.0.0.1", "port": port, "username": USER, "password": INITIAL_PW}).to_string()
    };
    create_secret(&c, "redis/app", &secret(tls_port), &[]).await;
    let mut admin = json(&r.secret_json(ADMIN_USER, ADMIN_PASSWORD));
    admin["port"] = tls_port.into();
    create_secret(&c, "redis/admin", &admin.to_string(), &[]).await;
    let env = aws_env(Some(&moto.url), None);
    let tls_target = |extra: &str| {
        format!(
            r#"{{ kind = "redis", host = "127.0.0.1", port = {tls_port}, username = "{USER}", admin_secret_id = "redis/admin"{extra} }}"#
        )
    };
    // Default verify-full, the CA unknown: refused before any command.
    let dir = config_dir(&secret_config("cache", "redis/app", &tls_target(""), false));
    let (ok, out) = rotate(dir.path(), "cache", &env);
    assert!(!ok, "{out}");
    assert!(
        out.contains("TLS") && out.contains("UnknownIssuer"),
        "{out}"
    );
    assert!(r.can_login(USER, INITIAL_PW));
    // With the CA: rotated over TLS.
    let dir = config_dir(&secret_config(
        "cache",
        "redis/app",
        &tls_target(&format!(r#", ca_file = "{}""#, ca.display())),
        false,
    ));
    let (ok, out) = rotate(dir.path(), "cache", &env);
    assert!(ok, "{out}");
    let now = pw(&json(&value_at(&c, "redis/app", "AWSCURRENT").await));
    assert!(r.can_login(USER, &now));
    assert!(!r.can_login(USER, INITIAL_PW));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_never_answers_fails_the_step_within_the_timeout() {
    let port = silent_server();
    let (_moto, dir, env) = with_fake_server_secrets(port, r#", timeout = "2s""#).await;
    let t0 = std::time::Instant::now();
    let (ok, out) = rotate(dir.path(), "cache", &env);
    assert!(!ok, "{out}");
    assert!(out.contains("no answer within 2s"), "{out}");
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        t0.elapsed()
    );
}

/// A password an earlier attempt added (its test step failed, or a revoke was skipped
/// after a rollback) stops working at the next revoke: afterwards only AWSCURRENT's
/// password logs in.
#[tokio::test(flavor = "multi_thread")]
async fn a_password_left_by_an_earlier_attempt_stops_working_at_revoke() {
    let Some(r) = Redis::start() else { return };
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    admin_secret(&c, &r).await;
    setup(&r, &c, USER, "redis/app").await;
    let orphan = "left by a failed attempt";
    assert_eq!(
        r.admin(&["ACL", "SETUSER", USER, &format!(">{orphan}")]),
        "OK"
    );
    assert!(r.can_login(USER, orphan));
    let dir = config_dir(&secret_config(
        "cache",
        "redis/app",
        &target(r.port, USER, ""),
        false,
    ));
    let (ok, out) = rotate(dir.path(), "cache", &aws_env(Some(&moto.url), None));
    assert!(ok, "{out}");
    let now = pw(&json(&value_at(&c, "redis/app", "AWSCURRENT").await));
    assert!(r.can_login(USER, &now));
    assert!(!r.can_login(USER, INITIAL_PW));
    assert!(
        !r.can_login(USER, orphan),
        "an old attempt's password still works"
    );
}

/// An application user that may not run PING (no `@connection`) still rotates: a
/// successful AUTH already proves the new password.
#[tokio::test(flavor = "multi_thread")]
async fn a_user_not_allowed_to_ping_still_rotates() {
    let Some(r) = Redis::start() else { return };
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    admin_secret(&c, &r).await;
    let rule = format!(">{INITIAL_PW}");
    assert_eq!(
        r.admin(&["ACL", "SETUSER", USER, "on", &rule, "~app:*", "-@all", "+get", "+set"]),
        "OK"
    );
    create_secret(&c, "redis/app", &r.secret_json(USER, INITIAL_PW), &[]).await;
    let dir = config_dir(&secret_config(
        "cache",
        "redis/app",
        &target(r.port, USER, ""),
        false,
    ));
    let (ok, out) = rotate(dir.path(), "cache", &aws_env(Some(&moto.url), None));
    assert!(ok, "{out}");
    let now = pw(&json(&value_at(&c, "redis/app", "AWSCURRENT").await));
    // The user may SET under app:*, not PING.
    let set = |p: &str| r.cli_as(USER, p, &["SET", "app:k", "v"]);
    assert_eq!(set(&now).as_deref(), Ok("OK"));
    assert_ne!(set(INITIAL_PW).as_deref(), Ok("OK"), "revoked");
}

/// `user app ...` as a config or aclfile line: the application user defined in a file,
/// with the initial password's hash.
fn app_user_line() -> String {
    format!("user {USER} on #{} ~* &* +@all", sha256_hex(INITIAL_PW))
}

/// moto holding the admin's secret for `r` and the application's (user `app` at the
/// initial password), and a configuration rotating it as "cache".
async fn with_secrets(
    r: &Redis,
) -> (
    Moto,
    aws_sdk_secretsmanager::Client,
    ConfigDir,
    Vec<(String, String)>,
) {
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    admin_secret(&c, r).await;
    create_secret(&c, "redis/app", &r.secret_json(USER, INITIAL_PW), &[]).await;
    let dir = config_dir(&secret_config(
        "cache",
        "redis/app",
        &target(r.port, USER, ""),
        false,
    ));
    let env = aws_env(Some(&moto.url), None);
    (moto, c, dir, env)
}

/// moto holding an application and an admin secret that name a fake server on `port`,
/// and a configuration rotating it as "cache" (`extra` added to its target).
async fn with_fake_server_secrets(
    port: u16,
    extra: &str,
) -> (Moto, ConfigDir, Vec<(String, String)>) {
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    let secret = |user: &str| {
        serde_json::json!({"host": "127.0.0.1", "port": port, "username": user, "password": "pw-x"})
            .to_string()
    };
    create_secret(&c, "redis/app", &secret(USER), &[]).await;
    create_secret(&c, "redis/admin", &secret(ADMIN_USER), &[]).await;
    let dir = config_dir(&secret_config(
        "cache",
        "redis/app",
        &target(port, USER, extra),
        false,
    ));
    let env = aws_env(Some(&moto.url), None);
    (moto, dir, env)
}

/// R3: with an aclfile, every ACL change is saved (`ACL SAVE`): after a restart the new
/// password logs in and the old one does not. An admin that may not save fails set
/// before AWSCURRENT moves; once it may, the rerun saves.
#[tokio::test(flavor = "multi_thread")]
async fn with_an_aclfile_the_new_password_survives_a_restart() {
    let users = app_user_line();
    let Some(mut r) = Redis::start_setup(Setup::AclFile(&users)) else {
        return;
    };
    let (_moto, c, dir, env) = with_secrets(&r).await;
    let (code, stdout, stderr) = check_remote(dir.path(), &env);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("cache: target redis: ACL user \"app\" is saved to the aclfile"),
        "{stdout}{stderr}"
    );

    // An admin that may change ACLs but not save them: set fails, nothing moves.
    assert_eq!(r.admin(&["ACL", "SETUSER", ADMIN_USER, "-acl|save"]), "OK");
    let before = stages(&c, "redis/app").await["AWSCURRENT"][0].clone();
    let (ok, out) = rotate(dir.path(), "cache", &env);
    assert!(!ok, "{out}");
    assert!(
        out.contains("step set (failed): redis: the new password of ACL user \"app\" could not survive a restart (an aclfile is set but ACL SAVE failed: NOPERM"),
        "{out}"
    );
    assert_eq!(stages(&c, "redis/app").await["AWSCURRENT"], vec![before]);
    assert!(r.can_login(USER, INITIAL_PW));
    assert_eq!(password_count(&r, USER), 1, "refused before ACL SETUSER");

    assert_eq!(r.admin(&["ACL", "SETUSER", ADMIN_USER, "+acl|save"]), "OK");
    let (ok, out) = rotate(dir.path(), "cache", &env);
    assert!(ok, "{out}");
    let now = pw(&json(&value_at(&c, "redis/app", "AWSCURRENT").await));
    r.restart();
    assert!(
        r.can_login(USER, &now),
        "the new password survives a restart"
    );
    assert!(!r.can_login(USER, INITIAL_PW), "the old one stays revoked");
    let saved = std::fs::read_to_string(r.path("users.acl")).unwrap();
    assert!(
        saved.contains(&sha256_hex(&now)) && !saved.contains(&now),
        "{saved}"
    );
}

/// R3: a user defined in redis.conf (no aclfile): every ACL change is written back with
/// `CONFIG REWRITE`; after a restart the new password logs in and the old one does not.
#[tokio::test(flavor = "multi_thread")]
async fn with_a_redis_conf_the_new_password_survives_a_restart() {
    let users = app_user_line();
    let Some(mut r) = Redis::start_setup(Setup::ConfFile(&users)) else {
        return;
    };
    let (_moto, c, dir, env) = with_secrets(&r).await;
    let (code, stdout, stderr) = check_remote(dir.path(), &env);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    // Second review, item 4: CONFIG REWRITE keeps only what the file alone defines.
    assert!(
        stderr.contains("warning: cache: target redis: ACL user \"app\" is saved with CONFIG REWRITE into the config file")
            && stderr.contains("command line")
            && stderr.contains("regenerated at every start"),
        "{stdout}{stderr}"
    );
    // Crashed after AWSCURRENT moved: both passwords must already survive a restart.
    crash_rotate(dir.path(), "cache", &env, "after-move-current");
    let now = pw(&json(&value_at(&c, "redis/app", "AWSCURRENT").await));
    r.restart();
    assert!(r.can_login(USER, &now), "set was saved");
    let (ok, out) = rotate(dir.path(), "cache", &env);
    assert!(ok, "{out}");
    r.restart();
    assert!(
        r.can_login(USER, &now),
        "the new password survives a restart"
    );
    assert!(!r.can_login(USER, INITIAL_PW), "the old one stays revoked");
    let conf = std::fs::read_to_string(r.path("redis.conf")).unwrap();
    assert!(!conf.contains(&now), "no password in redis.conf");
}

/// R3: a server started without a config file or an aclfile cannot keep an ACL change:
/// with `allow_unsaved = true`, `check --remote` warns (a restart loses the password),
/// and warns about replicas (ACLs are not replicated), from the primary and from the
/// replica. A rotation runs, with a warning.
#[tokio::test(flavor = "multi_thread")]
async fn check_remote_warns_when_nothing_saves_the_password_and_about_replicas() {
    let Some(r) = Redis::start_setup(Setup::NoConfig(&[])) else {
        return;
    };
    let port = r.port.to_string();
    let Some(replica) = Redis::start_setup(Setup::NoConfig(&[
        "--replicaof",
        "127.0.0.1",
        &port,
        "--masteruser",
        ADMIN_USER,
        "--masterauth",
        ADMIN_PASSWORD,
    ])) else {
        return;
    };
    let t0 = std::time::Instant::now();
    while !r
        .admin(&["INFO", "replication"])
        .contains("connected_slaves:1")
    {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(20),
            "no replica"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    admin_secret(&c, &r).await;
    setup(&r, &c, USER, "redis/app").await;
    // The replica: its own users (ACLs are per server).
    create_user(&replica, USER, INITIAL_PW);
    create_secret(
        &c,
        "redis/replica",
        &replica.secret_json(USER, INITIAL_PW),
        &[],
    )
    .await;
    let replica_target = format!(
        r#"{{ kind = "redis", host = "127.0.0.1", port = {}, username = "{USER}", admin_secret_id = "redis/admin-replica", sslmode = "disable", allow_unsaved = true }}"#,
        replica.port
    );
    create_secret(
        &c,
        "redis/admin-replica",
        &replica.secret_json(ADMIN_USER, ADMIN_PASSWORD),
        &[],
    )
    .await;
    let dir = config_dir(&format!(
        "{}{}",
        secret_config(
            "cache",
            "redis/app",
            &target(r.port, USER, ", allow_unsaved = true"),
            false
        ),
        secret_config("replica", "redis/replica", &replica_target, false)
    ));
    let env = aws_env(Some(&moto.url), None);
    let (code, stdout, stderr) = check_remote(dir.path(), &env);
    assert_eq!(code, Some(0), "warnings only: {stdout}{stderr}");
    assert!(
        stderr.contains("warning: cache: target redis: ACL user \"app\" is NOT saved (no aclfile is set; the server was started without a config file): a restart loses the new password (allowed by allow_unsaved = true)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "warning: cache: target redis: this server is a primary with 1 connected replica(s)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning: replica: target redis: this server is a replica"),
        "{stderr}"
    );
    assert!(stderr.contains("Sentinel"), "{stderr}");

    let (ok, out) = rotate(dir.path(), "cache", &env);
    assert!(ok, "{out}");
    assert!(out.contains("not saved"), "{out}");
    let now = pw(&json(&value_at(&c, "redis/app", "AWSCURRENT").await));
    assert!(r.can_login(USER, &now));
    assert!(!out.contains(&now));
}
/// The number of passwords `user` has (`ACL LIST`: one `#hash` each).
fn password_count(r: &Redis, user: &str) -> usize {
    r.admin(&["ACL", "LIST"])
        .lines()
        .find(|l| l.starts_with(&format!("user {user} ")))
        .map(|l| l.split(' ').filter(|w| w.starts_with('#')).count())
        .unwrap_or(0)
}

/// `cache`'s set is refused before ACL SETUSER, its output containing each of `says`:
/// no password added, AWSCURRENT unchanged. Returns the same secret's configuration with
/// `allow_unsaved = true`.
async fn refused_before_setuser(
    r: &Redis,
    c: &aws_sdk_secretsmanager::Client,
    dir: &Path,
    env: &[(String, String)],
    says: &[&str],
) -> ConfigDir {
    let before = stages(c, "redis/app").await["AWSCURRENT"][0].clone();
    let (ok, out) = rotate(dir, "cache", env);
    assert!(!ok, "{out}");
    for s in says {
        assert!(out.contains(s), "no {s:?} in {out}");
    }
    assert_eq!(password_count(r, USER), 1, "no password was added");
    assert_eq!(stages(c, "redis/app").await["AWSCURRENT"], vec![before]);
    config_dir(&secret_config(
        "cache",
        "redis/app",
        &target(r.port, USER, ", allow_unsaved = true"),
        false,
    ))
}

/// Second review, item 2: without an aclfile or a config file the change cannot survive
/// a restart: set refuses before ACL SETUSER (only the current password logs in,
/// AWSCURRENT stays), saying how to allow it, and `check --remote` reports a problem.
/// With `allow_unsaved = true` both let it through, with a warning.
#[tokio::test(flavor = "multi_thread")]
async fn without_a_file_to_save_to_set_refuses_before_acl_setuser_unless_allowed() {
    let Some(r) = Redis::start_setup(Setup::NoConfig(&[])) else {
        return;
    };
    let (_moto, c, dir, env) = with_secrets(&r).await;
    create_user(&r, USER, INITIAL_PW);
    let (code, stdout, stderr) = check_remote(dir.path(), &env);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("cache: target redis: ACL user \"app\" is NOT saved (no aclfile is set; the server was started without a config file): a restart would lose the new password, so set refuses"),
        "{stderr}"
    );
    let allowed = refused_before_setuser(
        &r,
        &c,
        dir.path(),
        &env,
        &[
            "step set (failed): redis: the new password of ACL user \"app\" could not survive a restart (no aclfile is set; the server was started without a config file); refused before ACL SETUSER",
            "allow_unsaved = true",
        ],
    )
    .await;
    let (code, stdout, stderr) = check_remote(allowed.path(), &env);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("allowed by allow_unsaved = true"),
        "{stderr}"
    );
    let (ok, out) = rotate(allowed.path(), "cache", &env);
    assert!(ok, "{out}");
    assert!(out.contains("not saved (allow_unsaved = true)"), "{out}");
    let now = pw(&json(&value_at(&c, "redis/app", "AWSCURRENT").await));
    assert!(r.can_login(USER, &now));
}

/// Second review, item 3: how to save is decided before ACL SETUSER. An admin that may
/// not run CONFIG or INFO still rotates when an aclfile is set (ACL SAVE is tried, and
/// the change survives a restart); a server whose CONFIG command is disabled and that
/// has no aclfile cannot save: refused before ACL SETUSER (no password added), and with
/// `allow_unsaved = true` it rotates.
#[tokio::test(flavor = "multi_thread")]
async fn saving_is_decided_before_acl_setuser_without_config_or_info() {
    let users = app_user_line();
    let Some(mut r) = Redis::start_setup(Setup::AclFile(&users)) else {
        return;
    };
    let (_moto, c, dir, env) = with_secrets(&r).await;
    assert_eq!(
        r.admin(&["ACL", "SETUSER", ADMIN_USER, "-config", "-info"]),
        "OK"
    );
    let (ok, out) = rotate(dir.path(), "cache", &env);
    assert!(ok, "{out}");
    let now = pw(&json(&value_at(&c, "redis/app", "AWSCURRENT").await));
    r.restart();
    assert!(r.can_login(USER, &now), "saved with ACL SAVE");
    assert!(!r.can_login(USER, INITIAL_PW), "the old one stays revoked");
    drop(r);

    let conf = format!("{}\nrename-command CONFIG \"\"", app_user_line());
    let Some(r) = Redis::start_setup(Setup::ConfFile(&conf)) else {
        return;
    };
    let (_moto, c, dir, env) = with_secrets(&r).await;
    let allowed = refused_before_setuser(
        &r,
        &c,
        dir.path(),
        &env,
        &[
            "could not survive a restart (CONFIG GET aclfile failed (ERR unknown command",
            "CONFIG REWRITE failed: ERR unknown command",
            "refused before ACL SETUSER",
        ],
    )
    .await;
    let (ok, out) = rotate(allowed.path(), "cache", &env);
    assert!(ok, "{out}");
}

/// Third review, item 1: an admin that may neither read `CONFIG GET` nor run `ACL SAVE`
/// but may `CONFIG REWRITE`, on a server with an aclfile: CONFIG REWRITE answers OK and
/// writes no user there, so it must not count as the save (a restart would bring the old
/// password back and lock the application out). Refused before ACL SETUSER.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_acl_save_is_not_taken_for_no_aclfile() {
    let users = app_user_line();
    let Some(r) = Redis::start_setup(Setup::AclFile(&users)) else {
        return;
    };
    let (_moto, c, dir, env) = with_secrets(&r).await;
    assert_eq!(
        r.admin(&["ACL", "SETUSER", ADMIN_USER, "-config|get", "-acl|save"]),
        "OK"
    );
    refused_before_setuser(
        &r,
        &c,
        dir.path(),
        &env,
        &[
            "CONFIG GET aclfile failed (NOPERM",
            "so did ACL SAVE (NOPERM",
            "refused before ACL SETUSER",
        ],
    )
    .await;
}

/// Third review, item 2: a save that stops working between set and revoke (the admin
/// lost `acl|save`, a read-only disk): revoke removes the old password in memory, and
/// fails (retried, alerting) instead of reporting done while a restart would revive it.
#[tokio::test(flavor = "multi_thread")]
async fn revoke_fails_while_its_removal_cannot_be_saved() {
    let users = app_user_line();
    let Some(mut r) = Redis::start_setup(Setup::AclFile(&users)) else {
        return;
    };
    let (_moto, c, dir, env) = with_secrets(&r).await;
    crash_rotate(dir.path(), "cache", &env, "after-move-current");
    let now = pw(&json(&value_at(&c, "redis/app", "AWSCURRENT").await));
    assert_eq!(r.admin(&["ACL", "SETUSER", ADMIN_USER, "-acl|save"]), "OK");
    let (ok, out) = rotate(dir.path(), "cache", &env);
    assert!(!ok, "{out}");
    assert!(
        out.contains("are removed but the change could not be saved"),
        "{out}"
    );
    assert!(!r.can_login(USER, INITIAL_PW), "removed in memory anyway");
    assert_eq!(r.admin(&["ACL", "SETUSER", ADMIN_USER, "+acl|save"]), "OK");
    let (ok, out) = rotate(dir.path(), "cache", &env);
    assert!(ok, "{out}");
    let latest = pw(&json(&value_at(&c, "redis/app", "AWSCURRENT").await));
    r.restart();
    assert!(r.can_login(USER, &latest));
    assert!(!r.can_login(USER, INITIAL_PW), "the removal was saved");
    assert!(latest == now || !r.can_login(USER, &now));
}

/// A fake Redis on 127.0.0.1: each command (an array of bulk strings) gets the bytes
/// `answer` returns for it.
fn fake_redis(answer: fn(&[String]) -> Vec<u8>) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut w = s.try_clone().expect("clone");
                let mut r = BufReader::new(s);
                let mut line = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let n: usize = line.trim()[1..].parse().unwrap_or(0);
                    let mut args = Vec::new();
                    for _ in 0..n {
                        line.clear();
                        r.read_line(&mut line).unwrap_or(0);
                        line.clear();
                        r.read_line(&mut line).unwrap_or(0);
                        args.push(line.trim_end().to_owned());
                    }
                    if w.write_all(&answer(&args)).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// R4: Redis 6 has no `ACL DRYRUN` and says `ERR Unknown subcommand` (capital U): that is
/// not a missing permission, and `check --remote` passes.
#[tokio::test(flavor = "multi_thread")]
async fn check_remote_on_redis_6_does_not_read_unknown_subcommand_as_no_permission() {
    let port = fake_redis(|args| {
        let bulk = |s: &str| format!("${}\r\n{s}\r\n", s.len());
        let cmd: Vec<&str> = args.iter().map(String::as_str).collect();
        match cmd[..] {
            ["AUTH", ..] => "+OK\r\n".into(),
            ["ACL", "GETUSER", _] => format!("*4\r\n{}*1\r\n{}{}*0\r\n", bulk("flags"), bulk("on"), bulk("passwords")),
            ["ACL", "DRYRUN", ..] => "-ERR Unknown subcommand or wrong number of arguments for 'DRYRUN'. Try ACL HELP.\r\n".into(),
            ["CONFIG", "GET", "aclfile"] => format!("*2\r\n{}{}", bulk("aclfile"), bulk("/etc/redis/users.acl")),
            ["INFO", "replication"] => bulk("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n"),
            ["INFO", ..] => bulk("# Server\r\nredis_version:6.2.14\r\nconfig_file:/etc/redis/redis.conf\r\n"),
            _ => "-ERR unknown command\r\n".into(),
        }
        .into_bytes()
    });
    let (_moto, dir, env) = with_fake_server_secrets(port, "").await;
    let (code, stdout, stderr) = check_remote(dir.path(), &env);
    assert!(!stderr.contains("may not run ACL SETUSER"), "{stderr}");
    assert_eq!(code, Some(0), "{stdout}{stderr}");
}
/// R5: a server that answers with an endless reply (an array of 10,000 one-MiB strings,
/// each within the per-item bound) is cut off once the reply passes the total bound: the
/// step fails at once, having read a few MiB, not gigabytes until the timeout.
#[tokio::test(flavor = "multi_thread")]
async fn a_huge_reply_is_cut_off_at_a_total_bound() {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().unwrap().port();
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut s in l.incoming().flatten() {
            let mut first = [0u8; 1];
            let _ = s.read(&mut first);
            let item = format!("${}\r\n{}\r\n", 1 << 20, "x".repeat(1 << 20));
            let _ = s.write_all(b"*10000\r\n");
            // At most 256 MiB, then silence: a client without a total bound reads it all
            // and waits for the rest until its timeout.
            for _ in 0..256 {
                if s.write_all(item.as_bytes()).is_err() {
                    break;
                }
                counter.fetch_add(item.len(), Ordering::SeqCst);
            }
            held.push(s);
        }
    });
    let (_moto, dir, env) = with_fake_server_secrets(port, r#", timeout = "10s""#).await;
    let t0 = std::time::Instant::now();
    let (ok, out) = rotate(dir.path(), "cache", &env);
    assert!(!ok, "{out}");
    assert!(out.contains("reply too large"), "{out}");
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(8),
        "{:?}",
        t0.elapsed()
    );
    let read = sent.load(Ordering::SeqCst);
    assert!(read < 64 << 20, "the client took {} MiB", read >> 20);
}
