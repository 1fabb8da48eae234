//! The `postgres` target end to end: `rotate` against moto (Secrets Manager), ecs-sim
//! (ECS) and a real PostgreSQL 15 started per test.

mod common;

use common::postgres::{FakeBehavior, FakePg, Postgres, ADMIN_PASSWORD, ADMIN_USER};
use common::*;
use postgres_protocol::escape::{escape_identifier, escape_literal};
use serde_json::Value;
use std::path::Path;

const SEED: &str = r#"{"clusters":[{"name":"prod","services":[
  {"name":"api","desiredCount":1},{"name":"pdf","desiredCount":1}]}]}"#;
/// Needs quoting in SQL.
const USER: &str = "app-user";
/// Every kind of punctuation, quotes and backslash included.
const INITIAL_PW: &str = "init P@ss'w\"o\\rd:/;$1";
/// Passwords with every printable ASCII character, space included.
const GENERATE: &str =
    r#"generate = { length = 40, exclude_characters = "", include_space = true }"#;

/// The pinning keys every postgres target needs (the server and the role it may touch).
/// `SECRET_ROTATOR_TEST_UNPINNED=1` leaves them (and `timeout`) out, to replay the attack
/// tests against a build from before pinning existed and see the attacks succeed.
fn pg_target(port: u16, extra: &str) -> String {
    if std::env::var_os("SECRET_ROTATOR_TEST_UNPINNED").is_some() {
        let extra = strip_timeout(extra);
        if extra.trim().is_empty() {
            return r#"{ kind = "postgres" }"#.into();
        }
        return format!(r#"{{ kind = "postgres", {extra} }}"#);
    }
    let sep = if extra.trim().is_empty() { "" } else { ", " };
    format!(
        r#"{{ kind = "postgres", host = "127.0.0.1", port = {port}, role = "{USER}"{sep}{extra} }}"#
    )
}

fn strip_timeout(extra: &str) -> String {
    extra
        .split(", ")
        .filter(|kv| !kv.trim_start().starts_with("timeout"))
        .collect::<Vec<_>>()
        .join(", ")
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
            r#"redeploy = [{ cluster = "prod", services = ["api", "pdf"] }]"#
        } else {
            ""
        }
    )
}

async fn create_role(pg: &Postgres, user: &str, password: &str) {
    pg.sql(&format!(
        "CREATE ROLE {} LOGIN PASSWORD {}",
        escape_identifier(user),
        escape_literal(password)
    ))
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

fn json(s: &str) -> Value {
    serde_json::from_str(s).expect("JSON secret")
}

#[tokio::test(flavor = "multi_thread")]
async fn single_user_rotation_changes_the_password_and_the_old_one_stops_working() {
    let pg = Postgres::init().launch(&["log_statement = 'all'"], None);
    let moto = Moto::start();
    let sim = EcsSim::start(&["--time-scale", "20"], SEED);
    create_role(&pg, USER, INITIAL_PW).await;
    let c = sm_client(&moto.url).await;
    // Unknown keys are kept, in place.
    let mut initial = json(&pg.secret_json(USER, INITIAL_PW));
    initial["proxy"] = serde_json::json!({"pool": 5, "note": "kept"});
    initial["dbClusterIdentifier"] = "main".into();
    let initial = initial.to_string();
    create_secret(&c, "db/app", &initial, &[]).await;
    let cfg = secret_config(
        "app-db",
        "db/app",
        &pg_target(pg.port, r#"mode = "single-user", sslmode = "disable""#),
        true,
    );
    let dir = config_dir(&cfg);
    let (ok, out) = rotate(
        dir.path(),
        "app-db",
        &aws_env(Some(&moto.url), Some(&sim.url)),
    );
    assert!(ok, "{out}");

    let now = json(&value_at(&c, "db/app", "AWSCURRENT").await);
    let before = json(&initial);
    let new_pw = now["password"].as_str().unwrap().to_owned();
    assert_ne!(new_pw, INITIAL_PW);
    assert_eq!(new_pw.len(), 40);
    assert_eq!(now["username"], USER);
    let keys: Vec<_> = now.as_object().unwrap().keys().cloned().collect();
    let keys_before: Vec<_> = before.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, keys_before, "same keys in the same order");
    for k in [
        "engine",
        "host",
        "port",
        "dbname",
        "proxy",
        "dbClusterIdentifier",
    ] {
        assert_eq!(now[k], before[k], "{k} kept");
    }

    assert!(pg.can_login(USER, &new_pw).await, "the new password works");
    assert!(
        !pg.can_login(USER, INITIAL_PW).await,
        "the old password no longer works"
    );
    assert!(!out.contains(&new_pw), "the password was printed: {out}");

    // The server stored (and logged) a SCRAM verifier, never the password.
    let rows = pg
        .admin()
        .await
        .query(
            "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
            &[&USER],
        )
        .await
        .unwrap();
    let stored: String = rows[0].get(0);
    assert!(stored.starts_with("SCRAM-SHA-256$4096:"), "{stored}");
    let log = pg.log();
    assert!(
        log.contains("ALTER ROLE \"app-user\" PASSWORD 'SCRAM-SHA-256$"),
        "{log}"
    );
    assert!(
        !log.contains(&new_pw),
        "the password reached the server log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn single_user_resumes_after_a_crash_between_set_and_finish() {
    let crash_bin = repo_root().join("target/failpoints/secret-rotator");
    assert!(
        crash_bin.exists(),
        "{} missing: scripts/test builds it (cargo build --features failpoints)",
        crash_bin.display()
    );
    let pg = Postgres::start();
    let moto = Moto::start();
    create_role(&pg, USER, INITIAL_PW).await;
    let c = sm_client(&moto.url).await;
    create_secret(&c, "db/app", &pg.secret_json(USER, INITIAL_PW), &[]).await;
    let cfg = secret_config(
        "app-db",
        "db/app",
        &pg_target(pg.port, r#"sslmode = "disable""#),
        false,
    );
    let dir = config_dir(&cfg);
    let env = aws_env(Some(&moto.url), None);

    let mut cmd = std::process::Command::new(&crash_bin);
    cmd.args(["rotate", "app-db", "--config", dir.path().to_str().unwrap()])
        .env("SECRET_ROTATOR_CRASH_AT", "after-set");
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "the crash build must abort");
    // The role now has the pending password; AWSCURRENT still holds the old one.
    let pending = json(&value_at(&c, "db/app", "AWSPENDING").await);
    let pending_pw = pending["password"].as_str().unwrap().to_owned();
    assert!(pg.can_login(USER, &pending_pw).await);
    assert!(!pg.can_login(USER, INITIAL_PW).await);
    assert_eq!(
        json(&value_at(&c, "db/app", "AWSCURRENT").await)["password"],
        INITIAL_PW
    );

    // The rerun cannot log in with AWSCURRENT's password, finds that the pending one
    // works (set already happened), and finishes the same version.
    let (ok, out) = rotate(dir.path(), "app-db", &env);
    assert!(ok, "{out}");
    let now = json(&value_at(&c, "db/app", "AWSCURRENT").await);
    assert_eq!(now["password"].as_str(), Some(pending_pw.as_str()));
    assert_eq!(version_count(&c, "db/app").await, 2);
    assert!(pg.can_login(USER, &pending_pw).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_alter_role_leaves_awscurrent_untouched_and_the_next_run_recovers() {
    let pg = Postgres::start();
    let moto = Moto::start();
    create_role(&pg, USER, INITIAL_PW).await;
    // A non-superuser admin, like an RDS master user, that has lost CREATEROLE.
    pg.sql("CREATE ROLE rotator LOGIN NOCREATEROLE PASSWORD 'rotator-pw'")
        .await;
    let c = sm_client(&moto.url).await;
    create_secret(&c, "db/app", &pg.secret_json(USER, INITIAL_PW), &[]).await;
    create_secret(
        &c,
        "db/rotator",
        r#"{"username":"rotator","password":"rotator-pw"}"#,
        &[],
    )
    .await;
    let before = stages(&c, "db/app").await["AWSCURRENT"][0].clone();
    let cfg = secret_config(
        "app-db",
        "db/app",
        &pg_target(
            pg.port,
            r#"mode = "single-user", admin_secret_id = "db/rotator", sslmode = "disable""#,
        ),
        false,
    );
    let dir = config_dir(&cfg);
    let env = aws_env(Some(&moto.url), None);

    let (ok, out) = rotate(dir.path(), "app-db", &env);
    assert!(!ok, "{out}");
    assert!(
        out.lines().any(|l| l
            .contains("step set (failed): postgres: ALTER ROLE \"app-user\" failed")
            && l.contains("42501")),
        "{out}"
    );
    let mid = stages(&c, "db/app").await;
    assert_eq!(mid["AWSCURRENT"], vec![before.clone()]);
    let pending_version = mid["AWSPENDING"][0].clone();
    let pending = json(&value_at(&c, "db/app", "AWSPENDING").await);
    let pending_pw = pending["password"].as_str().unwrap();
    assert!(!out.contains(pending_pw), "{out}");
    assert!(
        pg.can_login(USER, INITIAL_PW).await,
        "the old password still works"
    );

    // Privilege restored: the next run resumes the same pending version.
    pg.sql("ALTER ROLE rotator CREATEROLE").await;
    let (ok, out) = rotate(dir.path(), "app-db", &env);
    assert!(ok, "{out}");
    let end = stages(&c, "db/app").await;
    assert_eq!(end["AWSCURRENT"], vec![pending_version]);
    assert_eq!(end["AWSPREVIOUS"], vec![before]);
    assert!(pg.can_login(USER, pending_pw).await);
    assert!(!pg.can_login(USER, INITIAL_PW).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn alternating_users_keep_old_connections_and_logins_working() {
    let pg = Postgres::start();
    let moto = Moto::start();
    let sim = EcsSim::start(&["--time-scale", "20"], SEED);
    create_role(&pg, USER, INITIAL_PW).await;
    pg.sql(&format!(
        "CREATE TABLE orders (id int); INSERT INTO orders VALUES (1), (2); GRANT SELECT ON orders TO {}",
        escape_identifier(USER)
    ))
    .await;
    let c = sm_client(&moto.url).await;
    create_secret(&c, "db/app", &pg.secret_json(USER, INITIAL_PW), &[]).await;
    // Like an RDS-managed master secret: only username and password.
    create_secret(
        &c,
        "db/admin",
        &serde_json::json!({"username": ADMIN_USER, "password": ADMIN_PASSWORD}).to_string(),
        &[],
    )
    .await;
    let cfg = secret_config(
        "app-db",
        "db/app",
        &pg_target(
            pg.port,
            r#"mode = "alternating-users", admin_secret_id = "db/admin", sslmode = "disable""#,
        ),
        true,
    );
    let dir = config_dir(&cfg);
    let env = aws_env(Some(&moto.url), Some(&sim.url));

    // A consumer connected with the old credentials across the rotation.
    let old_conn = pg.login(USER, INITIAL_PW).await.expect("old login");
    let (ok, out) = rotate(dir.path(), "app-db", &env);
    assert!(ok, "{out}");
    let first = json(&value_at(&c, "db/app", "AWSCURRENT").await);
    let clone = format!("{USER}_clone");
    assert_eq!(first["username"], clone.as_str());
    let clone_pw = first["password"].as_str().unwrap().to_owned();
    assert!(!out.contains(&clone_pw), "{out}");

    let n: i64 = old_conn
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .expect("the old connection keeps working")
        .get(0);
    assert_eq!(n, 2);
    assert!(
        pg.can_login(USER, INITIAL_PW).await,
        "the old role still logs in"
    );
    let new_conn = pg.login(&clone, &clone_pw).await.expect("clone login");
    let n: i64 = new_conn
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .expect("the clone inherits the role's privileges")
        .get(0);
    assert_eq!(n, 2);

    // Second rotation: back to the original role, with a new password; the clone (now
    // the previous value) keeps working.
    let (ok, out) = rotate(dir.path(), "app-db", &env);
    assert!(ok, "{out}");
    let second = json(&value_at(&c, "db/app", "AWSCURRENT").await);
    assert_eq!(second["username"], USER);
    let pw2 = second["password"].as_str().unwrap();
    assert_ne!(pw2, INITIAL_PW);
    assert!(pg.can_login(USER, pw2).await);
    assert!(!pg.can_login(USER, INITIAL_PW).await);
    assert!(
        pg.can_login(&clone, &clone_pw).await,
        "the previous role still logs in"
    );
    new_conn
        .simple_query("SELECT 1")
        .await
        .expect("the clone's connection survives");
}

#[tokio::test(flavor = "multi_thread")]
async fn alternating_with_a_wrong_admin_password_fails_then_recovers() {
    let pg = Postgres::start();
    let moto = Moto::start();
    create_role(&pg, USER, INITIAL_PW).await;
    let c = sm_client(&moto.url).await;
    create_secret(&c, "db/app", &pg.secret_json(USER, INITIAL_PW), &[]).await;
    create_secret(
        &c,
        "db/admin",
        &serde_json::json!({"username": ADMIN_USER, "password": "wrong"}).to_string(),
        &[],
    )
    .await;
    let before = stages(&c, "db/app").await["AWSCURRENT"][0].clone();
    let cfg = secret_config(
        "app-db",
        "db/app",
        &pg_target(
            pg.port,
            r#"mode = "alternating-users", admin_secret_id = "db/admin", clone_suffix = "_b", sslmode = "disable""#,
        ),
        false,
    );
    let dir = config_dir(&cfg);
    let env = aws_env(Some(&moto.url), None);
    let (ok, out) = rotate(dir.path(), "app-db", &env);
    assert!(!ok, "{out}");
    assert!(
        out.contains("cannot log in as \"admin\"") && out.contains("28P01"),
        "{out}"
    );
    assert_eq!(stages(&c, "db/app").await["AWSCURRENT"], vec![before]);

    c.put_secret_value()
        .secret_id("db/admin")
        .secret_string(
            serde_json::json!({"username": ADMIN_USER, "password": ADMIN_PASSWORD}).to_string(),
        )
        .send()
        .await
        .unwrap();
    let (ok, out) = rotate(dir.path(), "app-db", &env);
    assert!(ok, "{out}");
    let now = json(&value_at(&c, "db/app", "AWSCURRENT").await);
    assert_eq!(now["username"], "app-user_b");
    assert!(
        pg.can_login("app-user_b", now["password"].as_str().unwrap())
            .await
    );
    assert!(pg.can_login(USER, INITIAL_PW).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn alternating_rolled_back_redeploy_keeps_the_old_role_working() {
    let pg = Postgres::start();
    let moto = Moto::start();
    let seed = SEED.replace(
        r#"{"name":"pdf","desiredCount":1}"#,
        r#"{"name":"pdf","desiredCount":1,"behavior":"failing"}"#,
    );
    let sim = EcsSim::start(&["--time-scale", "20"], &seed);
    create_role(&pg, USER, INITIAL_PW).await;
    let c = sm_client(&moto.url).await;
    create_secret(&c, "db/app", &pg.secret_json(USER, INITIAL_PW), &[]).await;
    create_secret(
        &c,
        "db/admin",
        &serde_json::json!({"username": ADMIN_USER, "password": ADMIN_PASSWORD}).to_string(),
        &[],
    )
    .await;
    let cfg = secret_config(
        "app-db",
        "db/app",
        &pg_target(
            pg.port,
            r#"mode = "alternating-users", admin_secret_id = "db/admin", sslmode = "disable""#,
        ),
        true,
    );
    let dir = config_dir(&cfg);
    let (ok, out) = rotate(
        dir.path(),
        "app-db",
        &aws_env(Some(&moto.url), Some(&sim.url)),
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("rolled back") && out.contains("prod/pdf"),
        "{out}"
    );
    assert!(
        pg.can_login(USER, INITIAL_PW).await,
        "the old role must keep working while consumers run the old value"
    );
}

/// Makes a CA and a server certificate for `san` with the openssl CLI.
fn make_certs(pg: &Postgres, san: &str) -> std::path::PathBuf {
    let work = pg.path("certs");
    std::fs::create_dir_all(&work).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&work)
            .output()
            .expect("openssl (scripts/install-tools installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=server",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(work.join("ext"), format!("subjectAltName={san}\n")).unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext",
        "-out",
        "server.crt",
    ]);
    pg.write_file(
        "server.crt",
        &std::fs::read(work.join("server.crt")).unwrap(),
        0o644,
    );
    pg.write_file(
        "server.key",
        &std::fs::read(work.join("server.key")).unwrap(),
        0o600,
    );
    work.join("ca.crt")
}

#[tokio::test(flavor = "multi_thread")]
async fn sslmode_is_honoured() {
    let pg = Postgres::init();
    // The certificate names another host: verify-ca accepts it, verify-full does not.
    let ca = make_certs(&pg, "DNS:db.invalid");
    let crt = pg.path("server.crt");
    let key = pg.path("server.key");
    let pg = pg.launch(
        &[
            "ssl = on",
            &format!("ssl_cert_file = '{}'", crt.display()),
            &format!("ssl_key_file = '{}'", key.display()),
            "log_connections = on",
        ],
        // The application role may only come over TLS.
        Some("hostssl all \"app-user\" 127.0.0.1/32 scram-sha-256\nhost all admin 127.0.0.1/32 scram-sha-256\n"),
    );
    let moto = Moto::start();
    create_role(&pg, USER, INITIAL_PW).await;
    let c = sm_client(&moto.url).await;
    create_secret(&c, "db/app", &pg.secret_json(USER, INITIAL_PW), &[]).await;
    let env = aws_env(Some(&moto.url), None);
    let ca_file = format!(r#"ca_file = "{}""#, ca.display());
    let run = |extra: &str| {
        let cfg = secret_config("app-db", "db/app", &pg_target(pg.port, extra), false);
        let dir = config_dir(&cfg);
        rotate(dir.path(), "app-db", &env)
    };

    let (ok, out) = run(r#"sslmode = "disable""#);
    assert!(
        !ok && out.contains("no pg_hba.conf entry"),
        "disable must not use TLS: {out}"
    );
    // No sslmode: verify-full, even with the right CA.
    let (ok, out) = run(&ca_file);
    assert!(
        !ok && out.contains("certificate not valid for name \"127.0.0.1\""),
        "the default checks the certificate and its name: {out}"
    );
    let (ok, out) = run(&format!(r#"sslmode = "verify-full", {ca_file}"#));
    assert!(
        !ok && out.contains("certificate not valid for name \"127.0.0.1\""),
        "verify-full checks the name: {out}"
    );
    let (ok, out) = run(r#"sslmode = "verify-ca""#);
    assert!(
        !ok && out.contains("UnknownIssuer"),
        "verify-ca checks the chain: {out}"
    );
    let (ok, out) = run(&format!(r#"sslmode = "verify-ca", {ca_file}"#));
    assert!(ok, "{out}");
    let (ok, out) = run(r#"sslmode = "require""#);
    assert!(
        ok,
        "require encrypts without checking the certificate: {out}"
    );
    // prefer would fall back to plain text: refused as configuration.
    let (ok, out) = run(r#"sslmode = "prefer""#);
    assert!(!ok && out.contains("\"prefer\" is not supported"), "{out}");
    let log = pg.log();
    assert!(
        log.contains("user=app-user database=postgres application_name=secret-rotator SSL enabled"),
        "{log}"
    );
    // Two rotations happened (the failures resumed the same pending version).
    assert_eq!(version_count(&c, "db/app").await, 3);
}

// ------------------------------------------------------------------ security (issue 12)

/// An RDS-style admin secret (no host: only username and password).
async fn admin_secret(c: &aws_sdk_secretsmanager::Client) {
    create_secret(
        c,
        "db/admin",
        &serde_json::json!({"username": ADMIN_USER, "password": ADMIN_PASSWORD}).to_string(),
        &[],
    )
    .await;
}

/// Runs `rotate`, killing it after `limit`: `None` if it was still running then.
fn rotate_within(
    dir: &Path,
    name: &str,
    env: &[(String, String)],
    limit: std::time::Duration,
) -> Option<(bool, String)> {
    let mut cmd = std::process::Command::new(rotator_bin());
    cmd.args(["rotate", name, "--config", dir.to_str().unwrap()])
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn rotate");
    let t0 = std::time::Instant::now();
    while t0.elapsed() < limit {
        if child.try_wait().expect("wait").is_some() {
            let out = child.wait_with_output().expect("output");
            return Some((
                out.status.success(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn app_secret_naming_the_admin_cannot_make_the_admin_alter_its_own_password() {
    let pg = Postgres::start();
    let moto = Moto::start();
    create_role(&pg, USER, INITIAL_PW).await;
    let c = sm_client(&moto.url).await;
    admin_secret(&c).await;
    // Someone who can only write the application secret names the admin's role in it.
    let planted = pg.secret_json(ADMIN_USER, "attacker-chosen");
    create_secret(&c, "db/app", &planted, &[]).await;
    let cfg = secret_config(
        "app-db",
        "db/app",
        &pg_target(
            pg.port,
            r#"mode = "single-user", admin_secret_id = "db/admin", sslmode = "disable""#,
        ),
        false,
    );
    let dir = config_dir(&cfg);
    let (ok, out) = rotate(dir.path(), "app-db", &aws_env(Some(&moto.url), None));
    assert!(
        pg.can_login(ADMIN_USER, ADMIN_PASSWORD).await,
        "the admin's password was changed by a write to the application secret: {out}"
    );
    assert_eq!(value_at(&c, "db/app", "AWSCURRENT").await, planted);
    assert!(!ok, "{out}");
    assert!(
        out.contains("names role \"admin\"") && out.contains("refused before connecting"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn app_secret_cannot_put_the_clone_role_inside_a_privileged_role() {
    let pg = Postgres::start();
    let moto = Moto::start();
    create_role(&pg, USER, INITIAL_PW).await;
    let c = sm_client(&moto.url).await;
    admin_secret(&c).await;
    // The planted username is the superuser: the clone would be "admin_clone", IN ROLE admin.
    create_secret(
        &c,
        "db/app",
        &pg.secret_json(ADMIN_USER, "attacker-chosen"),
        &[],
    )
    .await;
    let cfg = secret_config(
        "app-db",
        "db/app",
        &pg_target(
            pg.port,
            r#"mode = "alternating-users", admin_secret_id = "db/admin", sslmode = "disable""#,
        ),
        false,
    );
    let dir = config_dir(&cfg);
    let (ok, out) = rotate(dir.path(), "app-db", &aws_env(Some(&moto.url), None));
    let made: i64 = pg
        .admin()
        .await
        .query_one(
            "SELECT count(*) FROM pg_roles WHERE rolname <> $1 AND rolname NOT LIKE 'pg\\_%' AND rolname <> $2",
            &[&ADMIN_USER, &USER],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        made, 0,
        "a role was created from the planted username: {out}"
    );
    assert!(!ok, "{out}");
    assert!(out.contains("refused before connecting"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_clone_with_more_privileges_than_the_role_gets_no_password() {
    let pg = Postgres::start();
    let moto = Moto::start();
    create_role(&pg, USER, INITIAL_PW).await;
    // Left behind with an attribute the original lacks.
    pg.sql(&format!(
        "CREATE ROLE {} LOGIN CREATEROLE PASSWORD 'old-clone-pw'",
        escape_identifier(&format!("{USER}_clone"))
    ))
    .await;
    let c = sm_client(&moto.url).await;
    admin_secret(&c).await;
    create_secret(&c, "db/app", &pg.secret_json(USER, INITIAL_PW), &[]).await;
    let cfg = secret_config(
        "app-db",
        "db/app",
        &pg_target(
            pg.port,
            r#"mode = "alternating-users", admin_secret_id = "db/admin", sslmode = "disable""#,
        ),
        false,
    );
    let dir = config_dir(&cfg);
    let (ok, out) = rotate(dir.path(), "app-db", &aws_env(Some(&moto.url), None));
    assert!(!ok, "{out}");
    assert!(
        out.contains("has CREATEROLE that \"app-user\" lacks"),
        "{out}"
    );
    assert!(pg.can_login(&format!("{USER}_clone"), "old-clone-pw").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn app_secret_host_cannot_receive_the_admin_password() {
    let pg = Postgres::start();
    let moto = Moto::start();
    let evil = FakePg::start(FakeBehavior::AskCleartext);
    create_role(&pg, USER, INITIAL_PW).await;
    let c = sm_client(&moto.url).await;
    // The admin secret has no host, so the application secret's would be used.
    admin_secret(&c).await;
    let mut planted = json(&pg.secret_json(USER, INITIAL_PW));
    planted["port"] = evil.port.into();
    create_secret(&c, "db/app", &planted.to_string(), &[]).await;
    let cfg = secret_config(
        "app-db",
        "db/app",
        &pg_target(
            pg.port,
            r#"mode = "single-user", admin_secret_id = "db/admin", sslmode = "disable""#,
        ),
        false,
    );
    let dir = config_dir(&cfg);
    let (ok, out) = rotate(dir.path(), "app-db", &aws_env(Some(&moto.url), None));
    assert!(
        !contains(&evil.received(), ADMIN_PASSWORD),
        "the admin password reached the planted server: {out}"
    );
    assert_eq!(
        evil.connections(),
        0,
        "connected to the planted port: {out}"
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("names port {}", evil.port))
            && out.contains("refused before connecting"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_asking_for_the_password_in_clear_text_never_gets_it() {
    let moto = Moto::start();
    let evil = FakePg::start(FakeBehavior::AskCleartext);
    let c = sm_client(&moto.url).await;
    admin_secret(&c).await;
    let app = serde_json::json!({"engine": "postgres", "host": "127.0.0.1", "port": evil.port,
        "username": USER, "password": INITIAL_PW, "dbname": "postgres"});
    create_secret(&c, "db/app", &app.to_string(), &[]).await;
    // Single-user with and without the admin: neither password may be sent in clear.
    for (admin, password) in [
        (r#"admin_secret_id = "db/admin", "#, ADMIN_PASSWORD),
        ("", INITIAL_PW),
    ] {
        let cfg = secret_config(
            "app-db",
            "db/app",
            &pg_target(evil.port, &format!(r#"{admin}sslmode = "disable""#)),
            false,
        );
        let dir = config_dir(&cfg);
        let (ok, out) = rotate(dir.path(), "app-db", &aws_env(Some(&moto.url), None));
        assert!(
            !contains(&evil.received(), password),
            "the password was sent in clear text: {out}"
        );
        assert!(!ok, "{out}");
        assert!(
            out.contains("asked for the password in clear text; refused"),
            "{out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_that_never_answers_fails_the_step_within_the_timeout() {
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    admin_secret(&c).await;
    // Accepts and never answers; lets in, then never answers the role lookup.
    for behavior in [FakeBehavior::Silent, FakeBehavior::OkThenHang] {
        let hung = FakePg::start(behavior);
        let id = format!("db/app-{}", hung.port);
        let app = serde_json::json!({"engine": "postgres", "host": "127.0.0.1", "port": hung.port,
            "username": USER, "password": INITIAL_PW, "dbname": "postgres"});
        create_secret(&c, &id, &app.to_string(), &[]).await;
        let cfg = secret_config(
            "app-db",
            &id,
            &pg_target(
                hung.port,
                r#"mode = "alternating-users", admin_secret_id = "db/admin", sslmode = "disable", timeout = "2s""#,
            ),
            false,
        );
        let dir = config_dir(&cfg);
        let t0 = std::time::Instant::now();
        let r = rotate_within(
            dir.path(),
            "app-db",
            &aws_env(Some(&moto.url), None),
            std::time::Duration::from_secs(40),
        );
        let Some((ok, out)) = r else {
            panic!("{behavior:?}: rotate still running after 40s: a hung database holds the rotation forever");
        };
        assert!(!ok, "{out}");
        assert!(out.contains("no answer within 2s"), "{behavior:?}: {out}");
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(20),
            "{behavior:?}: took {:?}",
            t0.elapsed()
        );
        assert!(hung.connections() >= 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_with_an_unverifiable_certificate_is_refused_by_default() {
    let pg = Postgres::init();
    let _ca = make_certs(&pg, "IP:127.0.0.1");
    let crt = pg.path("server.crt");
    let key = pg.path("server.key");
    let pg = pg.launch(
        &[
            "ssl = on",
            &format!("ssl_cert_file = '{}'", crt.display()),
            &format!("ssl_key_file = '{}'", key.display()),
        ],
        None,
    );
    let moto = Moto::start();
    create_role(&pg, USER, INITIAL_PW).await;
    let c = sm_client(&moto.url).await;
    create_secret(&c, "db/app", &pg.secret_json(USER, INITIAL_PW), &[]).await;
    // No sslmode written: whoever answers on the path must prove who they are.
    let cfg = secret_config("app-db", "db/app", &pg_target(pg.port, ""), false);
    let dir = config_dir(&cfg);
    let (ok, out) = rotate(dir.path(), "app-db", &aws_env(Some(&moto.url), None));
    assert!(
        pg.can_login(USER, INITIAL_PW).await,
        "the password was changed over an unverified connection: {out}"
    );
    assert!(!ok, "{out}");
    assert!(out.contains("UnknownIssuer"), "{out}");
}

#[test]
fn check_warns_about_weaker_sslmodes() {
    for (mode, warned) in [
        ("disable", true),
        ("require", true),
        ("verify-ca", true),
        ("verify-full", false),
    ] {
        let cfg = secret_config(
            "app-db",
            "db/app",
            &pg_target(5432, &format!(r#"sslmode = "{mode}""#)),
            false,
        );
        let dir = config_dir(&cfg);
        let out = rotator(&["check", "--config", dir.path().to_str().unwrap()], &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert_eq!(
            err.contains(&format!("warning: app-db: target.sslmode = \"{mode}\"")),
            warned,
            "{mode}: {err}"
        );
    }
}

/// A role name PostgreSQL does not quote (`app`): the clone's membership in it is what the
/// clone is for, not an extra privilege. The third rotation (clone again) used to refuse
/// ("has member of app that app lacks") because one side of the comparison was quoted.
#[tokio::test(flavor = "multi_thread")]
async fn alternating_users_with_a_plain_role_name_keep_rotating() {
    const PLAIN: &str = "app";
    let pg = Postgres::start();
    let moto = Moto::start();
    create_role(&pg, PLAIN, INITIAL_PW).await;
    let c = sm_client(&moto.url).await;
    create_secret(&c, "db/plain", &pg.secret_json(PLAIN, INITIAL_PW), &[]).await;
    create_secret(
        &c,
        "db/admin",
        &serde_json::json!({"username": ADMIN_USER, "password": ADMIN_PASSWORD}).to_string(),
        &[],
    )
    .await;
    let target = format!(
        r#"{{ kind = "postgres", host = "127.0.0.1", port = {}, role = "{PLAIN}", mode = "alternating-users", admin_secret_id = "db/admin", sslmode = "disable" }}"#,
        pg.port
    );
    let dir = config_dir(&secret_config("plain-db", "db/plain", &target, false));
    let env = aws_env(Some(&moto.url), None);
    let mut users = Vec::new();
    for round in 1..=3 {
        let (ok, out) = rotate(dir.path(), "plain-db", &env);
        assert!(ok, "rotation {round}: {out}");
        let cur = json(&value_at(&c, "db/plain", "AWSCURRENT").await);
        let user = cur["username"].as_str().unwrap().to_owned();
        assert!(
            pg.can_login(&user, cur["password"].as_str().unwrap()).await,
            "rotation {round}: the new credentials log in"
        );
        users.push(user);
    }
    assert_eq!(users, ["app_clone", "app", "app_clone"]);
}
