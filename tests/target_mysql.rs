//! The `mysql` target end to end: `rotate` against moto (Secrets Manager), ecs-sim (ECS)
//! and a real MariaDB started per test (Debian's mariadb-server; see common::mariadb).

mod common;

use common::mariadb::{native_hash, MariaDb, ADMIN_PASSWORD, ADMIN_USER};
use common::*;
use serde_json::Value;
use std::path::Path;

const SEED: &str = r#"{"clusters":[{"name":"prod","services":[
  {"name":"api","desiredCount":1}]}]}"#;
/// Needs quoting in SQL.
const USER: &str = "app-user";
/// Every kind of punctuation, quotes and backslash included.
const INITIAL_PW: &str = "init P@ss'w\"o\\rd:/;$1`";
/// Passwords with every printable ASCII character, space included.
const GENERATE: &str =
    r#"generate = { length = 40, exclude_characters = "", include_space = true }"#;

fn target(port: u16, user: &str, extra: &str) -> String {
    let sep = if extra.trim().is_empty() { "" } else { ", " };
    format!(
        r#"{{ kind = "mysql", host = "127.0.0.1", port = {port}, user = "{user}", sslmode = "disable"{sep}{extra} }}"#
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

async fn create_user(db: &MariaDb, user: &str, password: &str) {
    db.sql(&format!(
        "CREATE USER `{user}`@`%` IDENTIFIED BY PASSWORD '{}'",
        native_hash(password)
    ))
    .await;
}

/// The application user at the initial password, with SELECT and INSERT on `shop.*`.
async fn shop_app_user(db: &MariaDb) {
    create_user(db, USER, INITIAL_PW).await;
    db.sql("CREATE DATABASE shop").await;
    db.sql(&format!("GRANT SELECT, INSERT ON shop.* TO `{USER}`@`%`"))
        .await;
}

async fn admin_secret(c: &aws_sdk_secretsmanager::Client, db: &MariaDb) {
    create_secret(
        c,
        "db/admin",
        &db.secret_json(ADMIN_USER, ADMIN_PASSWORD),
        &[],
    )
    .await;
}

/// Moto holding the admin secret and `db/app` (USER with INITIAL_PW), a client of it, and
/// the environment that points the daemon at it (moto lives as long as this).
struct AppSecret {
    _moto: Moto,
    c: aws_sdk_secretsmanager::Client,
    env: Vec<(String, String)>,
}

async fn app_secret(db: &MariaDb) -> AppSecret {
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    admin_secret(&c, db).await;
    create_secret(&c, "db/app", &db.secret_json(USER, INITIAL_PW), &[]).await;
    let env = aws_env(Some(&moto.url), None);
    AppSecret {
        _moto: moto,
        c,
        env,
    }
}

/// `app-db` on `db/app`, alternating-users with the admin secret, no consumer.
fn alternating_dir(db: &MariaDb) -> ConfigDir {
    config_dir(&secret_config(
        "app-db",
        "db/app",
        &alternating(db.port),
        false,
    ))
}

/// A limited admin `rotator` with `grants` (statements with `{R}` for its account), its
/// secret `db/rotator`, and `app-db` on `db/app` with it as admin (`mode` added).
async fn limited_admin(
    db: &MariaDb,
    c: &aws_sdk_secretsmanager::Client,
    grants: &[&str],
    mode: &str,
) -> ConfigDir {
    create_user(db, "rotator", "rotator-pw").await;
    for g in grants {
        db.sql(&g.replace("{R}", "`rotator`@`%`")).await;
    }
    create_secret(
        c,
        "db/rotator",
        &db.secret_json("rotator", "rotator-pw"),
        &[],
    )
    .await;
    config_dir(&secret_config(
        "app-db",
        "db/app",
        &target(
            db.port,
            USER,
            &format!(r#"{mode}admin_secret_id = "db/rotator""#),
        ),
        false,
    ))
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
        "the crash build must abort at {point}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).expect("JSON secret")
}

fn pw(v: &Value) -> String {
    v["password"].as_str().expect("password").to_owned()
}

/// Neither the password nor its hash's secret part appears in the server's logs; the
/// stored hash may (it is what the server keeps anyway).
fn assert_not_in_logs(db: &MariaDb, passwords: &[&str]) {
    let logs = db.logs();
    assert!(
        logs.contains("ALTER USER")
            || logs.contains("SET PASSWORD")
            || logs.contains("CREATE USER"),
        "the logs are on"
    );
    for p in passwords {
        assert!(!logs.contains(p), "a password reached the general/slow log");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn single_user_rotation_changes_the_password_and_the_old_one_stops_working() {
    let Some(db) = MariaDb::start() else { return };
    let moto = Moto::start();
    let sim = EcsSim::start(&["--time-scale", "20"], SEED);
    create_user(&db, USER, INITIAL_PW).await;
    let c = sm_client(&moto.url).await;
    admin_secret(&c, &db).await;
    // Unknown keys are kept, in place.
    let mut initial = json(&db.secret_json(USER, INITIAL_PW));
    initial["proxy"] = serde_json::json!({"pool": 5});
    let initial = initial.to_string();
    create_secret(&c, "db/app", &initial, &[]).await;
    let cfg = secret_config(
        "app-db",
        "db/app",
        &target(db.port, USER, r#"admin_secret_id = "db/admin""#),
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
    let new_pw = pw(&now);
    assert_ne!(new_pw, INITIAL_PW);
    assert_eq!(new_pw.len(), 40);
    let keys: Vec<_> = now.as_object().unwrap().keys().cloned().collect();
    let keys_before: Vec<_> = before.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, keys_before, "same keys in the same order");
    for k in ["engine", "host", "port", "dbname", "username", "proxy"] {
        assert_eq!(now[k], before[k], "{k} kept");
    }
    assert!(db.can_login(USER, &new_pw).await, "the new password works");
    assert!(
        !db.can_login(USER, INITIAL_PW).await,
        "the old one no longer does"
    );
    assert!(!out.contains(&new_pw), "the password was printed");
    // The server logged the hash, never the password.
    let logs = db.logs();
    assert!(
        logs.contains(&format!(
            "ALTER USER `{USER}`@`%` IDENTIFIED BY PASSWORD '{}'",
            native_hash(&new_pw)
        )),
        "{logs}"
    );
    assert_not_in_logs(&db, &[&new_pw, INITIAL_PW]);
}

#[tokio::test(flavor = "multi_thread")]
async fn single_user_without_admin_sets_its_own_password_and_resumes_after_a_crash() {
    let Some(db) = MariaDb::start() else { return };
    let moto = Moto::start();
    create_user(&db, USER, INITIAL_PW).await;
    let c = sm_client(&moto.url).await;
    create_secret(&c, "db/app", &db.secret_json(USER, INITIAL_PW), &[]).await;
    let dir = config_dir(&secret_config(
        "app-db",
        "db/app",
        &target(db.port, USER, ""),
        false,
    ));
    let env = aws_env(Some(&moto.url), None);

    crash_rotate(dir.path(), "app-db", &env, "after-set");
    // The user now has the pending password; AWSCURRENT still holds the old one.
    let pending_pw = pw(&json(&value_at(&c, "db/app", "AWSPENDING").await));
    assert!(db.can_login(USER, &pending_pw).await);
    assert!(!db.can_login(USER, INITIAL_PW).await);
    assert_eq!(
        pw(&json(&value_at(&c, "db/app", "AWSCURRENT").await)),
        INITIAL_PW
    );

    // The rerun cannot log in with AWSCURRENT's password, finds that the pending one
    // works (set already happened), and finishes the same version.
    let (ok, out) = rotate(dir.path(), "app-db", &env);
    assert!(ok, "{out}");
    assert_eq!(
        pw(&json(&value_at(&c, "db/app", "AWSCURRENT").await)),
        pending_pw
    );
    assert_eq!(version_count(&c, "db/app").await, 2);
    assert!(db.can_login(USER, &pending_pw).await);
    assert!(
        db.logs().contains("SET PASSWORD = '*"),
        "the user sets its own hash"
    );
    assert_not_in_logs(&db, &[&pending_pw, INITIAL_PW]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_at_each_step_resumes_to_a_working_password() {
    let Some(db) = MariaDb::start() else { return };
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    admin_secret(&c, &db).await;
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
        let id = format!("db/app{i}");
        create_user(&db, &user, INITIAL_PW).await;
        create_secret(&c, &id, &db.secret_json(&user, INITIAL_PW), &[]).await;
        let dir = config_dir(&secret_config(
            "app-db",
            &id,
            &target(db.port, &user, r#"admin_secret_id = "db/admin""#),
            false,
        ));
        crash_rotate(dir.path(), "app-db", &env, point);
        let (ok, out) = rotate(dir.path(), "app-db", &env);
        assert!(ok, "{point}: {out}");
        let now = pw(&json(&value_at(&c, &id, "AWSCURRENT").await));
        assert_ne!(now, INITIAL_PW, "{point}");
        assert!(
            db.can_login(&user, &now).await,
            "{point}: AWSCURRENT logs in"
        );
        assert!(
            !db.can_login(&user, INITIAL_PW).await,
            "{point}: the old one does not"
        );
        assert!(!stages(&c, &id).await.contains_key("AWSPENDING"), "{point}");

        // alternating-users: the clone is made (or finished) by the rerun, with the
        // original's grants, and the original keeps its login.
        let user = format!("alt{i}");
        let id = format!("db/alt{i}");
        create_user(&db, &user, INITIAL_PW).await;
        db.sql(&format!("GRANT SELECT ON mysql.* TO `{user}`@`%`"))
            .await;
        create_secret(&c, &id, &db.secret_json(&user, INITIAL_PW), &[]).await;
        let dir = config_dir(&secret_config(
            "app-db",
            &id,
            &target(
                db.port,
                &user,
                r#"mode = "alternating-users", admin_secret_id = "db/admin""#,
            ),
            false,
        ));
        crash_rotate(dir.path(), "app-db", &env, point);
        let (ok, out) = rotate(dir.path(), "app-db", &env);
        assert!(ok, "alternating, {point}: {out}");
        let now = json(&value_at(&c, &id, "AWSCURRENT").await);
        let clone = format!("{user}_clone");
        assert_eq!(now["username"], clone.as_str(), "{point}");
        assert!(
            db.can_login(&clone, &pw(&now)).await,
            "{point}: the clone logs in"
        );
        assert!(
            db.can_login(&user, INITIAL_PW).await,
            "{point}: the original too"
        );
        let theirs = db.grants(&format!("`{user}`@`%`")).await.unwrap();
        let mine = db.grants(&format!("`{clone}`@`%`")).await.unwrap();
        assert_eq!(
            normalized(&mine, &clone, &user),
            normalized(&theirs, &user, &user),
            "{point}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_alter_user_leaves_awscurrent_untouched_and_the_next_run_recovers() {
    let Some(db) = MariaDb::start() else { return };
    let moto = Moto::start();
    create_user(&db, USER, INITIAL_PW).await;
    // An admin that may log in but not alter users.
    create_user(&db, "rotator", "rotator-pw").await;
    let c = sm_client(&moto.url).await;
    create_secret(&c, "db/app", &db.secret_json(USER, INITIAL_PW), &[]).await;
    create_secret(
        &c,
        "db/rotator",
        r#"{"username":"rotator","password":"rotator-pw"}"#,
        &[],
    )
    .await;
    let before = stages(&c, "db/app").await["AWSCURRENT"][0].clone();
    let dir = config_dir(&secret_config(
        "app-db",
        "db/app",
        &target(db.port, USER, r#"admin_secret_id = "db/rotator""#),
        false,
    ));
    let env = aws_env(Some(&moto.url), None);
    let (ok, out) = rotate(dir.path(), "app-db", &env);
    assert!(!ok, "{out}");
    assert!(
        out.lines().any(|l| l
            .contains("step set (failed): mysql: ALTER USER `app-user`@`%` failed: ERROR 1227")),
        "{out}"
    );
    let mid = stages(&c, "db/app").await;
    assert_eq!(mid["AWSCURRENT"], vec![before.clone()]);
    let pending_pw = pw(&json(&value_at(&c, "db/app", "AWSPENDING").await));
    assert!(!out.contains(&pending_pw));
    assert!(
        db.can_login(USER, INITIAL_PW).await,
        "the old password still works"
    );

    db.sql("GRANT CREATE USER ON *.* TO `rotator`@`%`").await;
    let (ok, out) = rotate(dir.path(), "app-db", &env);
    assert!(ok, "{out}");
    let end = stages(&c, "db/app").await;
    assert_eq!(end["AWSPREVIOUS"], vec![before]);
    let now = pw(&json(&value_at(&c, "db/app", "AWSCURRENT").await));
    assert!(db.can_login(USER, &now).await);
    assert!(!db.can_login(USER, INITIAL_PW).await);
}

/// The original's grants, with the grantee replaced by `as_user` and no password clause:
/// what the clone must hold, exactly.
fn normalized(lines: &[String], from: &str, as_user: &str) -> Vec<String> {
    let mut v: Vec<String> = lines
        .iter()
        .map(|l| {
            let l = l.replace(&format!("`{from}`@`%`"), &format!("`{as_user}`@`%`"));
            match l.find(" IDENTIFIED BY PASSWORD") {
                Some(i) => l[..i].to_owned(),
                None => l,
            }
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn alternating_users_copy_exactly_the_grants_and_keep_the_old_login_working() {
    let Some(db) = MariaDb::start() else { return };
    create_user(&db, USER, INITIAL_PW).await;
    db.sql("CREATE DATABASE shop").await;
    db.sql("CREATE TABLE shop.orders (id INT)").await;
    db.sql("CREATE ROLE reader").await;
    db.sql("GRANT SELECT ON shop.* TO reader").await;
    db.sql(&format!("GRANT SELECT, INSERT ON shop.* TO `{USER}`@`%`"))
        .await;
    db.sql(&format!(
        "GRANT UPDATE (id) ON shop.orders TO `{USER}`@`%` WITH GRANT OPTION"
    ))
    .await;
    db.sql(&format!("GRANT reader TO `{USER}`@`%`")).await;
    let AppSecret { _moto, c, env } = app_secret(&db).await;
    let dir = config_dir(&secret_config(
        "app-db",
        "db/app",
        &target(
            db.port,
            USER,
            r#"mode = "alternating-users", admin_secret_id = "db/admin""#,
        ),
        false,
    ));
    let clone = format!("{USER}_clone");

    // First rotation: the clone is made, with exactly the original's grants.
    let (ok, out) = rotate(dir.path(), "app-db", &env);
    assert!(ok, "{out}");
    let now = json(&value_at(&c, "db/app", "AWSCURRENT").await);
    assert_eq!(now["username"], clone.as_str());
    let clone_pw = pw(&now);
    assert!(db.can_login(&clone, &clone_pw).await, "the clone logs in");
    assert!(
        db.can_login(USER, INITIAL_PW).await,
        "the old login keeps working"
    );
    let theirs = db.grants(&format!("`{USER}`@`%`")).await.unwrap();
    let mine = db.grants(&format!("`{clone}`@`%`")).await.unwrap();
    assert_eq!(
        normalized(&mine, &clone, USER),
        normalized(&theirs, USER, USER),
        "{mine:?} vs {theirs:?}"
    );
    // And they work: the clone reads and writes what the original may.
    let mut cc = db.login(&clone, &clone_pw).await.unwrap();
    use mysql_async::prelude::Queryable;
    cc.query_drop("INSERT INTO shop.orders VALUES (1)")
        .await
        .unwrap();
    assert!(
        cc.query_drop("DELETE FROM shop.orders").await.is_err(),
        "no more than the original"
    );
    let _ = cc.disconnect().await;

    // Second rotation: back to the original with a new password; the clone still works.
    let (ok, out) = rotate(dir.path(), "app-db", &env);
    assert!(ok, "{out}");
    let now = json(&value_at(&c, "db/app", "AWSCURRENT").await);
    assert_eq!(now["username"], USER);
    let user_pw = pw(&now);
    assert!(db.can_login(USER, &user_pw).await);
    assert!(!db.can_login(USER, INITIAL_PW).await);
    assert!(
        db.can_login(&clone, &clone_pw).await,
        "the previous login keeps working"
    );

    // Third: the clone again, with its existing grants checked, not widened.
    let (ok, out) = rotate(dir.path(), "app-db", &env);
    assert!(ok, "{out}");
    let mine = db.grants(&format!("`{clone}`@`%`")).await.unwrap();
    assert_eq!(
        normalized(&mine, &clone, USER),
        normalized(&theirs, USER, USER)
    );
    assert_not_in_logs(&db, &[&clone_pw, &user_pw, INITIAL_PW, ADMIN_PASSWORD]);
}

/// Second review, item 1: an account that already has the clone's name but that this
/// secret never rotated to (neither AWSCURRENT nor AWSPREVIOUS names it) may be someone
/// else's (a reporting account). When its grants differ from the original's, with fewer
/// or with more, it is refused, and left as it was: no REVOKE, no GRANT, no new
/// password. One that holds exactly the original's grants is taken, as before.
#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_account_with_the_clone_name_is_refused_and_left_untouched() {
    let Some(db) = MariaDb::start() else { return };
    shop_app_user(&db).await;
    let clone = format!("{USER}_clone");
    let account = format!("`{clone}`@`%`");
    create_user(&db, &clone, "clone-pw").await;
    db.sql(&format!("GRANT SELECT ON shop.* TO {account}"))
        .await;
    let AppSecret { _moto, c, env } = app_secret(&db).await;
    let dir = alternating_dir(&db);
    // Third review, item 5: whoever may write the secret names the foreign account in
    // AWSPREVIOUS (the application never reads it): a name proves nothing.
    c.put_secret_value()
        .secret_id("db/app")
        .secret_string(db.secret_json(&clone, "not its password"))
        .version_stages("AWSPREVIOUS")
        .send()
        .await
        .unwrap();
    let before = stages(&c, "db/app").await["AWSCURRENT"].clone();
    for more in [false, true] {
        if more {
            db.sql(&format!(
                "GRANT ALL PRIVILEGES ON *.* TO {account} WITH GRANT OPTION"
            ))
            .await;
        }
        let grants = db.grants(&account).await.unwrap();
        let (ok, out) = rotate(dir.path(), "app-db", &env);
        assert!(!ok, "{out}");
        assert!(
            out.contains(&format!(
                "user {account} already exists, none of this secret's passwords"
            )),
            "{out}"
        );
        assert_eq!(
            db.grants(&account).await.unwrap(),
            grants,
            "grants untouched"
        );
        assert!(db.can_login(&clone, "clone-pw").await, "password untouched");
        assert_eq!(stages(&c, "db/app").await["AWSCURRENT"], before);
        let logs = db.logs();
        assert!(!logs.contains("REVOKE"), "a REVOKE was sent");
        assert!(
            !logs.contains(&format!("ALTER USER {account}")),
            "an ALTER USER of the foreign account was sent"
        );
    }
    // Exactly the original's grants: taken, as before this fix.
    db.sql(&format!(
        "REVOKE ALL PRIVILEGES, GRANT OPTION FROM {account}"
    ))
    .await;
    db.sql(&format!("GRANT SELECT, INSERT ON shop.* TO {account}"))
        .await;
    let (ok, out) = rotate(dir.path(), "app-db", &env);
    assert!(ok, "{out}");
    let now = json(&value_at(&c, "db/app", "AWSCURRENT").await);
    assert_eq!(now["username"], clone.as_str());
    assert!(db.can_login(&clone, &pw(&now)).await);
}

/// Third review, item 3: a first alternating set that fails after CREATE USER (here the
/// admin may not grant one of the original's privileges) drops the clone it made: the
/// daemon retries with a fresh password, which could not prove the account its own, so
/// a clone left behind would be refused forever. Once the admin may, the rerun rotates.
#[tokio::test(flavor = "multi_thread")]
async fn a_first_set_failing_after_create_user_drops_the_clone() {
    let Some(db) = MariaDb::start() else { return };
    shop_app_user(&db).await;
    let AppSecret { _moto, c, env } = app_secret(&db).await;
    // An admin that may create users and read grants, and grant SELECT but not INSERT.
    let dir = limited_admin(
        &db,
        &c,
        &[
            "GRANT CREATE USER, SELECT ON *.* TO {R}",
            "GRANT SELECT ON shop.* TO {R} WITH GRANT OPTION",
        ],
        r#"mode = "alternating-users", "#,
    )
    .await;
    let account = format!("`{USER}_clone`@`%`");
    let (ok, out) = rotate(dir.path(), "app-db", &env);
    assert!(!ok, "{out}");
    assert!(
        db.grants(&account).await.is_err(),
        "the clone this failed set created is left behind"
    );
    db.sql("GRANT INSERT ON shop.* TO `rotator`@`%` WITH GRANT OPTION")
        .await;
    let (ok, out) = rotate(dir.path(), "app-db", &env);
    assert!(ok, "{out}");
    let now = json(&value_at(&c, "db/app", "AWSCURRENT").await);
    assert!(db.can_login(&format!("{USER}_clone"), &pw(&now)).await);
}

/// Third review, item 4 (fourth review: kept as a warning): single-user with an admin
/// that may not read the account's `SHOW CREATE USER` (no SELECT on mysql) cannot know
/// whether the test login can work (REQUIRE X509): `check --remote` says so. (Refusing
/// unless a login worked locked the application out after a failed test, when the
/// retry's fresh password and AWSCURRENT's were both dead.)
#[tokio::test(flavor = "multi_thread")]
async fn check_remote_warns_when_the_accounts_attributes_are_not_readable() {
    let Some(db) = MariaDb::start() else { return };
    create_user(&db, USER, INITIAL_PW).await;
    let AppSecret { _moto, c, env } = app_secret(&db).await;
    let dir = limited_admin(&db, &c, &["GRANT CREATE USER ON *.* TO {R}"], "").await;
    // MariaDB needs SELECT on mysql for another account's SHOW GRANTS too: `check
    // --remote` reports that as a problem. (An admin that can read the grants but not
    // parse SHOW CREATE USER, MySQL 5.7's quoting, gets a warning instead.)
    let (code, stdout, stderr) = check_remote(dir.path(), &env);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("SHOW GRANTS FOR `{USER}`@`%` failed"))
            && stderr.contains("Access denied"),
        "{stdout}{stderr}"
    );
    // It still rotates (a plain account).
    let (ok, out) = rotate(dir.path(), "app-db", &env);
    assert!(ok, "{out}");
}

/// A first alternating rotation killed between CREATE USER and the grants leaves a clone
/// that no stage names yet (AWSCURRENT still holds the original): the rerun must know it
/// as its own (it accepts this rotation's pending password, which CREATE USER gave it)
/// and finish, not refuse it as someone else's account and wait for an operator.
#[tokio::test(flavor = "multi_thread")]
async fn a_first_clone_interrupted_after_create_user_is_finished_by_the_rerun() {
    let Some(db) = MariaDb::start() else { return };
    shop_app_user(&db).await;
    let AppSecret { _moto, c, env } = app_secret(&db).await;
    let dir = alternating_dir(&db);
    let clone = format!("{USER}_clone");
    let account = format!("`{clone}`@`%`");
    crash_rotate(dir.path(), "app-db", &env, "mysql-after-create-user");
    assert!(
        db.grants(&account).await.is_ok(),
        "the crash came after CREATE USER"
    );
    let (ok, out) = rotate(dir.path(), "app-db", &env);
    assert!(ok, "{out}");
    let now = json(&value_at(&c, "db/app", "AWSCURRENT").await);
    assert_eq!(now["username"], clone.as_str());
    assert!(db.can_login(&clone, &pw(&now)).await);
    let theirs = db.grants(&format!("`{USER}`@`%`")).await.unwrap();
    let mine = db.grants(&account).await.unwrap();
    assert_eq!(
        normalized(&mine, &clone, USER),
        normalized(&theirs, USER, USER)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_naming_another_server_or_a_rotated_admin_are_refused_before_connecting() {
    let Some(db) = MariaDb::start() else { return };
    let moto = Moto::start();
    create_user(&db, USER, INITIAL_PW).await;
    let c = sm_client(&moto.url).await;
    let env = aws_env(Some(&moto.url), None);
    // An application secret naming another host.
    let mut evil = json(&db.secret_json(USER, INITIAL_PW));
    evil["host"] = "evil.example".into();
    create_secret(&c, "db/evil", &evil.to_string(), &[]).await;
    let dir = config_dir(&secret_config(
        "evil",
        "db/evil",
        &target(db.port, USER, ""),
        false,
    ));
    let (ok, out) = rotate(dir.path(), "evil", &env);
    assert!(!ok);
    assert!(
        out.contains(
            "names host \"evil.example\" but this target may only connect to host \"127.0.0.1\""
        ),
        "{out}"
    );
    // An admin secret whose user is the rotated user.
    create_secret(&c, "db/app", &db.secret_json(USER, INITIAL_PW), &[]).await;
    create_secret(&c, "db/self", &db.secret_json(USER, INITIAL_PW), &[]).await;
    let dir = config_dir(&secret_config(
        "app",
        "db/app",
        &target(db.port, USER, r#"admin_secret_id = "db/self""#),
        false,
    ));
    let (ok, out) = rotate(dir.path(), "app", &env);
    assert!(!ok);
    assert!(
        out.contains("is a user this target rotates; refused"),
        "{out}"
    );
    assert!(db.can_login(USER, INITIAL_PW).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_remote_and_dry_run() {
    let Some(db) = MariaDb::start() else { return };
    let moto = Moto::start();
    create_user(&db, USER, INITIAL_PW).await;
    create_user(&db, "weak", "weak-pw").await;
    let c = sm_client(&moto.url).await;
    admin_secret(&c, &db).await;
    create_secret(
        &c,
        "db/weak",
        r#"{"username":"weak","password":"weak-pw"}"#,
        &[],
    )
    .await;
    create_secret(&c, "db/app", &db.secret_json(USER, INITIAL_PW), &[]).await;
    create_secret(&c, "db/ghost", &db.secret_json("ghost", "x"), &[]).await;
    let env = aws_env(Some(&moto.url), None);
    let good = secret_config(
        "app",
        "db/app",
        &target(db.port, USER, r#"admin_secret_id = "db/admin""#),
        false,
    );
    let dir = config_dir(&good);
    let out = rotator(
        &[
            "check",
            "--remote",
            "--config",
            dir.path().to_str().unwrap(),
        ],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bad = format!(
        "{}{}",
        secret_config(
            "ghost",
            "db/ghost",
            &target(db.port, "ghost", r#"admin_secret_id = "db/admin""#),
            false
        ),
        secret_config(
            "app",
            "db/app",
            &target(db.port, USER, r#"admin_secret_id = "db/weak""#),
            false
        )
    );
    let dir = config_dir(&bad);
    let (code, _, err) = check_remote(dir.path(), &env);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("ghost: target mysql: user `ghost`@`%` does not exist"),
        "{err}"
    );
    assert!(
        err.contains(
            "app: target mysql: the admin secret's user \"weak\" lacks the CREATE USER privilege"
        ),
        "{err}"
    );
    assert!(!err.contains("weak-pw") && !err.contains(INITIAL_PW));

    let dir = config_dir(&good);
    let out = rotator(
        &[
            "rotate",
            "app",
            "--dry-run",
            "--config",
            dir.path().to_str().unwrap(),
        ],
        &env,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("ALTER USER 'app-user'@'%' IDENTIFIED BY PASSWORD <hash>"),
        "{stdout}"
    );
    assert!(!stdout.contains(INITIAL_PW));
    assert_eq!(version_count(&c, "db/app").await, 1);
    assert!(db.can_login(USER, INITIAL_PW).await);

    // plan shows the target: a JSON field and a --wide column.
    let d = dir.path().to_str().unwrap();
    let out = rotator(&["plan", "--json", "--config", d], &env);
    let rows: Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
    assert_eq!(rows[0]["target"], "mysql", "{rows}");
    let out = rotator(&["plan", "--wide", "--config", d], &env);
    let wide = String::from_utf8_lossy(&out.stdout);
    let header = wide.lines().next().unwrap_or_default();
    assert!(header.contains("TARGET"), "{wide}");
    assert!(
        wide.lines().nth(1).unwrap_or_default().contains(" mysql "),
        "{wide}"
    );
}

/// Runs `rotate NAME` at `RUST_LOG=trace`, in JSON and in text; everything printed.
fn rotate_at_trace(dir: &Path, name: &str, env: &[(String, String)]) -> String {
    let mut captured = String::new();
    for format in ["json", "text"] {
        let mut cmd = std::process::Command::new(rotator_bin());
        cmd.args(["rotate", name, "--config", dir.to_str().unwrap()])
            .args(["--log-format", format])
            .env("RUST_LOG", "trace");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        captured.push_str(&String::from_utf8_lossy(&out.stdout));
        captured.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    captured
}

#[tokio::test(flavor = "multi_thread")]
async fn no_password_or_hash_in_trace_output() {
    let Some(db) = MariaDb::start() else { return };
    create_user(&db, USER, INITIAL_PW).await;
    let AppSecret { _moto, c, env } = app_secret(&db).await;
    let dir = config_dir(&secret_config(
        "app-db",
        "db/app",
        &target(
            db.port,
            USER,
            r#"mode = "alternating-users", admin_secret_id = "db/admin""#,
        ),
        false,
    ));
    let captured = rotate_at_trace(dir.path(), "app-db", &env);
    let versions = c
        .list_secret_version_ids()
        .secret_id("db/app")
        .send()
        .await
        .unwrap();
    let mut secrets: Vec<String> = vec![INITIAL_PW.into(), ADMIN_PASSWORD.into()];
    for v in versions.versions() {
        let doc = json(
            c.get_secret_value()
                .secret_id("db/app")
                .version_id(v.version_id().unwrap())
                .send()
                .await
                .unwrap()
                .secret_string()
                .unwrap(),
        );
        secrets.push(pw(&doc));
    }
    assert!(secrets.len() >= 4, "two rotations ran: {captured}");
    let hashes: Vec<String> = secrets.iter().map(|s| native_hash(s)).collect();
    for s in secrets.iter().chain(&hashes) {
        let escaped = serde_json::to_string(s).unwrap();
        assert!(
            !captured.contains(s.as_str()) && !captured.contains(escaped.trim_matches('"')),
            "a password or its hash leaked at RUST_LOG=trace"
        );
    }
    assert!(captured.contains("app-db"), "{captured}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_is_verified_by_default_and_never_falls_back_to_plain_text() {
    let certs = tempfile::tempdir().unwrap();
    let Some((db, ca)) = MariaDb::start_tls(certs.path()) else {
        return;
    };
    create_user(&db, USER, INITIAL_PW).await;
    let AppSecret { _moto, c, env } = app_secret(&db).await;
    let tls_target = |extra: &str| {
        format!(
            r#"{{ kind = "mysql", host = "127.0.0.1", port = {}, user = "{USER}", admin_secret_id = "db/admin"{extra} }}"#,
            db.port
        )
    };

    // Default (verify-full), the test CA unknown to the system: refused, nothing changed.
    let dir = config_dir(&secret_config("app", "db/app", &tls_target(""), false));
    let (ok, out) = rotate(dir.path(), "app", &env);
    assert!(!ok, "{out}");
    assert!(
        out.contains("cannot log in as \"admin\"") && out.contains("UnknownIssuer"),
        "{out}"
    );
    assert!(db.can_login(USER, INITIAL_PW).await);

    // With the CA: verified, rotated.
    let dir = config_dir(&secret_config(
        "app",
        "db/app",
        &tls_target(&format!(r#", ca_file = "{}""#, ca.display())),
        false,
    ));
    let (ok, out) = rotate(dir.path(), "app", &env);
    assert!(ok, "{out}");
    let now = pw(&json(&value_at(&c, "db/app", "AWSCURRENT").await));
    assert!(db.can_login(USER, &now).await);

    // A server without TLS: sslmode = "require" fails, never falls back.
    let Some(plain) = MariaDb::start() else {
        return;
    };
    create_user(&plain, USER, INITIAL_PW).await;
    create_secret(&c, "db/plain", &plain.secret_json(USER, INITIAL_PW), &[]).await;
    let dir = config_dir(&secret_config(
        "plain",
        "db/plain",
        &format!(
            r#"{{ kind = "mysql", host = "127.0.0.1", port = {}, user = "{USER}", sslmode = "require" }}"#,
            plain.port
        ),
        false,
    ));
    let (ok, out) = rotate(dir.path(), "plain", &env);
    assert!(!ok, "{out}");
    assert!(plain.can_login(USER, INITIAL_PW).await);
    assert!(out.contains("SSL") || out.contains("TLS"), "{out}");
    assert!(
        !plain.logs().contains("SET PASSWORD"),
        "no statement reached the plain server"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_never_answers_fails_the_step_within_the_timeout() {
    let moto = Moto::start();
    let port = silent_server();
    let c = sm_client(&moto.url).await;
    let secret = serde_json::json!({"host": "127.0.0.1", "port": port, "username": USER, "password": INITIAL_PW});
    create_secret(&c, "db/app", &secret.to_string(), &[]).await;
    let dir = config_dir(&secret_config(
        "app",
        "db/app",
        &target(port, USER, r#"timeout = "2s""#),
        false,
    ));
    let t0 = std::time::Instant::now();
    let (ok, out) = rotate(dir.path(), "app", &aws_env(Some(&moto.url), None));
    assert!(!ok, "{out}");
    assert!(out.contains("no answer within 2s"), "{out}");
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(
        pw(&json(&value_at(&c, "db/app", "AWSCURRENT").await)),
        INITIAL_PW
    );
}

/// M1: a multibyte client character set (gbk here; big5, sjis, cp932 alike) can turn the
/// byte before a quoted literal's escaping backslash into one character with it, so a
/// planted password could end the literal. Such a session is refused before any
/// statement, naming the character set; no password changes.
#[tokio::test(flavor = "multi_thread")]
async fn a_multibyte_client_character_set_is_refused_before_any_statement() {
    let Some(db) = MariaDb::start_with(&[
        "--character-set-server=gbk".into(),
        "--collation-server=gbk_chinese_ci".into(),
        "--skip-character-set-client-handshake".into(),
    ]) else {
        return;
    };
    let moto = Moto::start();
    create_user(&db, USER, INITIAL_PW).await;
    let c = sm_client(&moto.url).await;
    admin_secret(&c, &db).await;
    for id in ["db/app", "db/alt", "db/own"] {
        create_secret(&c, id, &db.secret_json(USER, INITIAL_PW), &[]).await;
    }
    let env = aws_env(Some(&moto.url), None);
    for (name, id, extra) in [
        ("admin", "db/app", r#"admin_secret_id = "db/admin""#),
        (
            "alternating",
            "db/alt",
            r#"mode = "alternating-users", admin_secret_id = "db/admin""#,
        ),
        ("own", "db/own", ""),
    ] {
        let before = stages(&c, id).await["AWSCURRENT"][0].clone();
        let dir = config_dir(&secret_config(
            name,
            id,
            &target(db.port, USER, extra),
            false,
        ));
        let (ok, out) = rotate(dir.path(), name, &env);
        assert!(!ok, "{name}: {out}");
        assert!(out.contains("character_set_client is gbk"), "{name}: {out}");
        assert_eq!(stages(&c, id).await["AWSCURRENT"], vec![before], "{name}");
        assert!(db.can_login(USER, INITIAL_PW).await, "{name}");
        let logs = db.logs();
        for statement in ["ALTER USER", "SET PASSWORD", "`app-user_clone`"] {
            assert!(!logs.contains(statement), "{name}: {statement} was sent");
        }
        // check --remote says so too.
        let (code, _, err) = check_remote(dir.path(), &env);
        assert_eq!(code, Some(1), "{name}: {err}");
        assert!(err.contains("character_set_client is gbk"), "{name}: {err}");
    }
}

/// The literal quoting used for MySQL (`IDENTIFIED BY '...'`), against a real server:
/// MariaDB reporting a MySQL version takes that path. Passwords made only of quotes and
/// backslashes log in afterwards, with and without NO_BACKSLASH_ESCAPES.
#[tokio::test(flavor = "multi_thread")]
async fn passwords_of_quotes_and_backslashes_are_quoted_right_in_every_sql_mode() {
    let Some(db) = MariaDb::start_with(&["--version=8.0.36".into()]) else {
        return;
    };
    create_user(&db, USER, INITIAL_PW).await;
    let AppSecret { _moto, c, env } = app_secret(&db).await;
    let cfg = format!(
        r##"
[[secret]]
name = "app"
secret_id = "db/app"
every = "30d"
generate = {{ length = 40, exclude_lowercase = true, exclude_uppercase = true, exclude_numbers = true, exclude_characters = "!\"#$%&()*+,-./:;<=>?@[]^_`{{|}}~" }}
target = {}
"##,
        target(
            db.port,
            USER,
            r#"mode = "alternating-users", admin_secret_id = "db/admin""#
        )
    );
    let dir = config_dir(&cfg);
    for (i, mode) in ["", "NO_BACKSLASH_ESCAPES", "NO_BACKSLASH_ESCAPES", ""]
        .into_iter()
        .enumerate()
    {
        db.sql(&format!("SET GLOBAL sql_mode = '{mode}'")).await;
        let (ok, out) = rotate(dir.path(), "app", &env);
        assert!(ok, "{i} {mode}: {out}");
        let now = json(&value_at(&c, "db/app", "AWSCURRENT").await);
        let p = pw(&now);
        assert!(p.contains('\'') && p.contains('\\'), "{p:?}");
        let user = now["username"].as_str().unwrap();
        assert!(db.can_login(user, &p).await, "{i} {mode}: {user}");
    }
}

fn alternating(port: u16) -> String {
    target(
        port,
        USER,
        r#"mode = "alternating-users", admin_secret_id = "db/admin""#,
    )
}

/// M2: the clone ends every set with exactly the original's grants: a privilege granted
/// to the original after the clone was made reaches the clone (it no longer blocks the
/// rotation), one taken from the original is taken from the clone, and one given to the
/// clone alone is removed.
#[tokio::test(flavor = "multi_thread")]
async fn the_clone_follows_the_originals_grants_and_loses_its_own() {
    let Some(db) = MariaDb::start() else { return };
    create_user(&db, USER, INITIAL_PW).await;
    db.sql("CREATE DATABASE shop").await;
    db.sql("CREATE TABLE shop.orders (id INT)").await;
    db.sql(&format!("GRANT SELECT ON shop.* TO `{USER}`@`%`"))
        .await;
    let AppSecret { _moto, c, env } = app_secret(&db).await;
    let dir = alternating_dir(&db);
    let clone = format!("{USER}_clone");
    let rotate_to = |who: &'static str| {
        let (ok, out) = rotate(dir.path(), "app-db", &env);
        assert!(ok, "to {who}: {out}");
    };
    rotate_to("the clone");
    rotate_to("the original");

    db.sql(&format!("GRANT INSERT ON shop.* TO `{USER}`@`%`"))
        .await;
    db.sql(&format!("GRANT UPDATE (id) ON shop.orders TO `{USER}`@`%`"))
        .await;
    db.sql(&format!("GRANT DELETE ON shop.* TO `{clone}`@`%`"))
        .await;
    db.sql(&format!(
        "GRANT SELECT ON mysql.* TO `{clone}`@`%` WITH GRANT OPTION"
    ))
    .await;
    rotate_to("the clone");
    let now = json(&value_at(&c, "db/app", "AWSCURRENT").await);
    assert_eq!(now["username"], clone.as_str());
    let same = |theirs: Vec<String>, mine: Vec<String>| {
        assert_eq!(
            normalized(&mine, &clone, USER),
            normalized(&theirs, USER, USER),
            "{mine:?} vs {theirs:?}"
        )
    };
    same(
        db.grants(&format!("`{USER}`@`%`")).await.unwrap(),
        db.grants(&format!("`{clone}`@`%`")).await.unwrap(),
    );
    let mut cc = db.login(&clone, &pw(&now)).await.unwrap();
    use mysql_async::prelude::Queryable;
    cc.query_drop("INSERT INTO shop.orders VALUES (1)")
        .await
        .expect("granted to the original since: the clone has it");
    assert!(
        cc.query_drop("DELETE FROM shop.orders").await.is_err(),
        "the clone's own grant was removed"
    );
    let _ = cc.disconnect().await;

    // Taken from the original: taken from the clone at its next set.
    db.sql(&format!("REVOKE INSERT ON shop.* FROM `{USER}`@`%`"))
        .await;
    rotate_to("the original");
    rotate_to("the clone");
    same(
        db.grants(&format!("`{USER}`@`%`")).await.unwrap(),
        db.grants(&format!("`{clone}`@`%`")).await.unwrap(),
    );
}

/// M3: the clone gets the original's account attributes that are not privileges
/// (`REQUIRE SSL`, `MAX_QUERIES_PER_HOUR` and the other limits), and follows them when
/// they change: none kept that the original lost.
#[tokio::test(flavor = "multi_thread")]
async fn the_clone_gets_the_originals_require_ssl_and_limits() {
    let certs = tempfile::tempdir().unwrap();
    let Some((db, _ca)) = MariaDb::start_tls(certs.path()) else {
        return;
    };
    create_user(&db, USER, INITIAL_PW).await;
    db.sql(&format!(
        "ALTER USER `{USER}`@`%` REQUIRE SSL WITH MAX_QUERIES_PER_HOUR 1000"
    ))
    .await;
    let AppSecret { _moto, env, .. } = app_secret(&db).await;
    let tls = format!(
        r#"{{ kind = "mysql", host = "127.0.0.1", port = {}, user = "{USER}", mode = "alternating-users", admin_secret_id = "db/admin", sslmode = "require" }}"#,
        db.port
    );
    let dir = config_dir(&secret_config("app-db", "db/app", &tls, false));
    let clone = format!("`{USER}_clone`@`%`");
    let create_user_of = |account: String| {
        let db = &db;
        async move {
            let mut c = db.login(ADMIN_USER, ADMIN_PASSWORD).await.unwrap();
            use mysql_async::prelude::Queryable;
            let s: String = c
                .query_first(format!("SHOW CREATE USER {account}"))
                .await
                .unwrap()
                .unwrap();
            let _ = c.disconnect().await;
            s
        }
    };
    let (ok, out) = rotate(dir.path(), "app-db", &env);
    assert!(ok, "{out}");
    let shown = create_user_of(clone.clone()).await;
    assert!(
        shown.contains(" REQUIRE SSL") && shown.contains("MAX_QUERIES_PER_HOUR 1000"),
        "{shown}"
    );
    let (ok, out) = rotate(dir.path(), "app-db", &env);
    assert!(ok, "{out}");

    // The original loses REQUIRE SSL and gets other limits: so does the clone.
    db.sql(&format!(
        "ALTER USER `{USER}`@`%` REQUIRE NONE WITH MAX_QUERIES_PER_HOUR 2000 MAX_USER_CONNECTIONS 50"
    ))
    .await;
    let (ok, out) = rotate(dir.path(), "app-db", &env);
    assert!(ok, "{out}");
    let shown = create_user_of(clone.clone()).await;
    assert!(!shown.contains("REQUIRE"), "{shown}");
    assert!(
        shown.contains("MAX_QUERIES_PER_HOUR 2000") && shown.contains("MAX_USER_CONNECTIONS 50"),
        "{shown}"
    );
}

/// Second review, item 6: an account the daemon's own test login cannot use (REQUIRE
/// X509: the daemon has no client certificate; REQUIRE SSL with `sslmode = "disable"`)
/// is refused before any change, in single-user (its password would change and the
/// test then fail) and in alternating-users (no clone is made); `check --remote` reports
/// both.
#[tokio::test(flavor = "multi_thread")]
async fn an_account_the_test_login_cannot_use_is_refused_before_any_change() {
    let Some(db) = MariaDb::start() else { return };
    create_user(&db, USER, INITIAL_PW).await;
    db.sql(&format!("ALTER USER `{USER}`@`%` REQUIRE X509"))
        .await;
    create_user(&db, "alt", INITIAL_PW).await;
    db.sql("ALTER USER `alt`@`%` REQUIRE SSL").await;
    let AppSecret { _moto, c, env } = app_secret(&db).await;
    create_secret(&c, "db/alt", &db.secret_json("alt", INITIAL_PW), &[]).await;
    let dir = config_dir(&format!(
        "{}{}",
        secret_config(
            "app",
            "db/app",
            &target(db.port, USER, r#"admin_secret_id = "db/admin""#),
            false
        ),
        secret_config(
            "alt",
            "db/alt",
            &target(
                db.port,
                "alt",
                r#"mode = "alternating-users", admin_secret_id = "db/admin""#
            ),
            false
        )
    ));
    let (code, stdout, stderr) = check_remote(dir.path(), &env);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("app: target mysql: user `app-user`@`%` requires a client certificate"),
        "{stderr}"
    );
    assert!(
        stderr.contains("alt: target mysql: user `alt`@`%` requires TLS (REQUIRE SSL or CIPHER) and the target's sslmode is \"disable\""),
        "{stderr}"
    );

    let app_before = db.grants(&format!("`{USER}`@`%`")).await.unwrap();
    let (ok, out) = rotate(dir.path(), "app", &env);
    assert!(!ok, "{out}");
    assert!(out.contains("requires a client certificate"), "{out}");
    assert!(out.contains("refused before any change"), "{out}");
    assert_eq!(
        db.grants(&format!("`{USER}`@`%`")).await.unwrap(),
        app_before,
        "the password is unchanged"
    );

    let (ok, out) = rotate(dir.path(), "alt", &env);
    assert!(!ok, "{out}");
    assert!(out.contains("requires TLS"), "{out}");
    assert!(
        db.grants("`alt_clone`@`%`").await.is_err(),
        "no clone was created"
    );
    assert!(!db.logs().contains("CREATE USER `alt_clone`"));
}
