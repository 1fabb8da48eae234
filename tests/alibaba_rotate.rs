//! `rotate` of an Alibaba Cloud KMS secret whose target is a real PostgreSQL role, against
//! alibaba-kms-sim (issue 17): the role gets the new password before ACSCurrent moves, the
//! old one stops working, a command consumer restarts the application, and a kill -9 at
//! every step followed by a rerun leaves exactly one new current value and no pending
//! stage. No test prints a secret value.

mod common;

use common::alibaba::{AlibabaSim, AK, SK};
use common::postgres::Postgres;
use common::rotator_bin;
use rotator_core::ids::{
    Account, Endpoint, SecretId, SecretRef, StoreKind, StoreParts, StoreRoute,
};
use rotator_core::rotation::store::{SecretStore, Select, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use secrecy::{ExposeSecret, SecretString};
use secret_rotator::stores::alibaba::calls::Kms;
use secret_rotator::stores::alibaba::client::Transport;
use secret_rotator::stores::alibaba::{
    AlibabaSettings, AlibabaStore, Credentials, Endpoint as KmsEndpoint, Tuning,
};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const INITIAL: &str = "initial-password-0";

fn tuning() -> Tuning {
    Tuning {
        timeout: Duration::from_secs(5),
        attempts: 4,
        backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
    }
}

fn creds() -> Credentials {
    Credentials::new(AK, SecretString::from(SK.to_owned()), None)
}

fn store(sim: &AlibabaSim) -> AlibabaStore {
    AlibabaStore::with_credentials(
        AlibabaSettings {
            sts_endpoint: Some(sim.url.clone()),
        },
        creds(),
    )
    .with_tuning(tuning())
}

fn secret_ref(sim: &AlibabaSim, name: &str) -> SecretRef {
    SecretRef {
        id: SecretId::new(name.to_owned()),
        account: Account::default(),
        store: StoreRoute::new(StoreParts {
            kind: StoreKind::Alibaba,
            region: Some("cn-hangzhou".into()),
            endpoint: Some(Endpoint::new(sim.url.clone())),
            role_arn: None,
        }),
    }
}

/// A login role with the initial password and an Alibaba secret holding it (RDS shape).
async fn new_secret(sim: &AlibabaSim, pg: &Postgres, name: &str, role: &str) {
    pg.sql(&format!("CREATE ROLE {role} LOGIN PASSWORD '{INITIAL}'"))
        .await;
    let transport = Transport::new(tuning());
    let endpoint = KmsEndpoint::parse(&sim.url).unwrap();
    let c = creds();
    let kms = Kms {
        transport: &transport,
        endpoint: &endpoint,
        creds: &c,
    };
    kms.create_secret(
        name,
        "v1",
        &SecretString::from(pg.secret_json(role, INITIAL)),
        &[],
    )
    .await
    .expect("create secret");
}

/// One Alibaba secret with a single-user PostgreSQL target and a command consumer that
/// records each restart (never the value).
fn config(dir: &Path, sim: &AlibabaSim, pg: &Postgres, name: &str, role: &str) {
    let restart = dir.join("restart.sh");
    std::fs::write(
        &restart,
        format!(
            "#!/bin/sh\necho restarted >> {}\n",
            dir.join("restarts.log").display()
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
[alibaba]
region = "cn-hangzhou"
endpoint = "{url}"
sts_endpoint = "{url}"

[[secret]]
name = "orders-db"
store = "alibaba"
secret_id = "{name}"
every = "30d"
target = {{ kind = "postgres", mode = "single-user", host = "127.0.0.1", port = {port}, role = "{role}", sslmode = "disable" }}
redeploy = [{{ command = ["{restart}"], timeout = "30s" }}]
"#,
        url = sim.url,
        port = pg.port,
        restart = restart.display()
    );
    std::fs::write(dir.join("secrets.toml"), toml).unwrap();
}

fn rotate(bin: &Path, dir: &Path, crash_at: Option<&str>) -> Output {
    let mut c = Command::new(bin);
    c.args(["rotate", "orders-db", "--config"])
        .arg(dir)
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", AK)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SK)
        .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN")
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

fn doc(v: &SecretString) -> Value {
    serde_json::from_str(v.expose_secret()).expect("the secret is JSON")
}

/// One rotation's end state: a new password current and working, the initial one
/// previous and refused, exactly one new version, no pending stage, nothing leaked.
async fn assert_rotated_once(
    sim: &AlibabaSim,
    pg: &Postgres,
    name: &str,
    role: &str,
    out: &Output,
    what: &str,
) {
    let st = store(sim);
    let r = secret_ref(sim, name);
    let (_, current) = st.get_value(&r, Select::Stage(AWSCURRENT)).await.unwrap();
    let (previous_id, previous) = st.get_value(&r, Select::Stage(AWSPREVIOUS)).await.unwrap();
    let (current, previous) = (doc(&current), doc(&previous));
    assert_eq!(previous_id.as_str(), "v1", "{what}");
    assert!(
        previous["password"] == INITIAL,
        "{what}: the previous version is not the initial value"
    );
    let password = current["password"].as_str().unwrap_or_default().to_owned();
    assert!(
        !password.is_empty() && password != INITIAL,
        "{what}: the password did not change"
    );
    assert_eq!(current["username"], role, "{what}");
    let meta = st.describe(&r).await.unwrap();
    assert_eq!(meta.versions.len(), 2, "{what}: exactly one new version");
    assert!(
        meta.version_with(AWSPENDING).is_none(),
        "{what}: a pending stage is left"
    );
    assert!(
        pg.can_login(role, &password).await,
        "{what}: the current password does not log in"
    );
    assert!(
        !pg.can_login(role, INITIAL).await,
        "{what}: the old password still logs in"
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains(&password),
        "{what}: the new password is in the output"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_an_alibaba_secret_with_a_postgres_target() {
    let sim = AlibabaSim::start(&[]);
    let pg = Postgres::start();
    new_secret(&sim, &pg, "prod/orders/db", "orders_app").await;
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &sim, &pg, "prod/orders/db", "orders_app");
    let out = rotate_now(dir.path()).await;
    assert!(
        out.status.success(),
        "rotate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_rotated_once(&sim, &pg, "prod/orders/db", "orders_app", &out, "rotation").await;
    let runs = std::fs::read_to_string(dir.path().join("restarts.log")).unwrap_or_default();
    assert_eq!(runs.lines().count(), 1, "the consumer restarted once");

    // `plan` and `check --remote` read the Alibaba store too (no AWS credentials needed).
    for args in [&["plan"][..], &["check", "--remote"][..]] {
        let d = dir.path().to_owned();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let out = tokio::task::spawn_blocking(move || {
            Command::new(rotator_bin())
                .args(&args)
                .arg("--config")
                .arg(&d)
                .env("ALIBABA_CLOUD_ACCESS_KEY_ID", AK)
                .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SK)
                .env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_PROFILE")
                .env("AWS_CONFIG_FILE", "/nonexistent")
                .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env("NO_COLOR", "1")
                .output()
                .expect("run secret-rotator")
        })
        .await
        .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains("orders-db"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_at_every_step_then_a_rerun_leaves_one_new_value() {
    let sim = AlibabaSim::start(&[]);
    let pg = Postgres::start();
    for (i, point) in common::CRASH_POINTS.into_iter().enumerate() {
        let (name, role) = (format!("prod/orders/db{i}"), format!("orders_app{i}"));
        new_secret(&sim, &pg, &name, &role).await;
        let dir = tempfile::tempdir().unwrap();
        config(dir.path(), &sim, &pg, &name, &role);
        let d = dir.path().to_owned();
        let rerun = tokio::task::spawn_blocking(move || {
            common::crash_then_rerun(point, |bin, at| rotate(bin, &d, at))
        })
        .await
        .unwrap();
        assert_rotated_once(&sim, &pg, &name, &role, &rerun, point).await;
        let runs = std::fs::read_to_string(dir.path().join("restarts.log")).unwrap_or_default();
        assert!(
            runs.lines().count() >= 1,
            "{point}: no restart after the crash"
        );
    }
}

/// Alibaba documents that PutSecretValue with ACSCurrent moves ACSPrevious; for
/// UpdateSecretVersionStage it does not say so. Against a KMS that leaves ACSPrevious in
/// place, the rotation must still leave the replaced value previous (a revoke of
/// "previous" would otherwise hit an older value and leave the replaced one valid:
/// adversarial review of issue 17, finding 4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acs_previous_is_the_replaced_value_even_if_kms_does_not_move_it() {
    let sim = AlibabaSim::start(&["--manual-previous"]);
    let pg = Postgres::start();
    new_secret(&sim, &pg, "prod/orders/db", "orders_app").await;
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &sim, &pg, "prod/orders/db", "orders_app");
    let out = rotate_now(dir.path()).await;
    assert!(
        out.status.success(),
        "rotate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_rotated_once(
        &sim,
        &pg,
        "prod/orders/db",
        "orders_app",
        &out,
        "manual previous",
    )
    .await;
}
