//! `rotate` end to end with the real SDK clients: Secrets Manager on moto, ECS on ecs-sim.

mod common;

use common::*;
use std::time::{SystemTime, UNIX_EPOCH};

const SEED: &str = r#"{"clusters":[{"name":"prod","services":[
  {"name":"front","desiredCount":2},{"name":"api","desiredCount":2},
  {"name":"pdf","desiredCount":1},{"name":"admin","desiredCount":1}]}]}"#;

const CONFIG: &str = r#"
[[secret]]
name = "api-db"
secret_id = "prod/api/db"
every = "30d"
json_key = "password"
redeploy = [{ cluster = "prod", services = ["front", "api", "pdf", "admin"] }]
stable_timeout = "2m"
"#;

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_writes_one_version_redeploys_all_and_reports_stable_promptly() {
    let moto = Moto::start();
    // 20x: a rollout of 20 s start + 10 s drain takes 1.5 s, done by our first poll (2 s).
    // Real-time lateness and call counts against the CLI waiter are in BENCHMARKS.md.
    let sim = EcsSim::start(&["--time-scale", "20"], SEED);
    let c = sm_client(&moto.url).await;
    create_secret(
        &c,
        "prod/api/db",
        r#"{"engine":"postgres","username":"app","password":"initial","port":5432}"#,
        &[],
    )
    .await;
    let before = stages(&c, "prod/api/db").await;
    let old = before["AWSCURRENT"][0].clone();
    let dir = config_dir(CONFIG);

    let out = rotator(
        &[
            "rotate",
            "api-db",
            "--json",
            "--config",
            dir.path().to_str().unwrap(),
        ],
        &aws_env(Some(&moto.url), Some(&sim.url)),
    );
    let finished = now_secs();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rotate failed: {stderr}");

    let after = stages(&c, "prod/api/db").await;
    assert_eq!(
        version_count(&c, "prod/api/db").await,
        2,
        "exactly one new version: {after:?}"
    );
    assert_eq!(after["AWSPREVIOUS"], vec![old.clone()]);
    assert_ne!(after["AWSCURRENT"][0], old);
    assert!(!after.contains_key("AWSPENDING"), "{after:?}");

    // JSON key rotated, the rest kept in order.
    let value = value_at(&c, "prod/api/db", "AWSCURRENT").await;
    let v: serde_json::Value = serde_json::from_str(&value).unwrap();
    assert_eq!(v["username"], "app");
    assert_eq!(v["port"], 5432);
    assert_ne!(v["password"], "initial");
    assert_eq!(v["password"].as_str().unwrap().len(), 32);
    let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["engine", "username", "password", "port"]);

    // Every consumer redeployed once and stable, reported no later than the CLI waiter
    // would (a poll every 15 s from the force), plus a second for the calls themselves.
    let calls = sim.calls();
    assert_eq!(calls["UpdateService"], 4, "{calls}");
    let completions = sim.completions();
    let done: Vec<&serde_json::Value> = completions
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "completed")
        .collect();
    assert_eq!(done.len(), 4, "{completions}");
    let last = done
        .iter()
        .map(|c| c["wallTime"].as_f64().unwrap())
        .fold(0.0, f64::max);
    let late = finished - last;
    assert!(
        late < 16.0,
        "reported {late:.2}s after the last rollout completed"
    );

    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["outcome"], "success");
    assert_eq!(report["version"], after["AWSCURRENT"][0]);
    for s in ["prod/front", "prod/api", "prod/pdf", "prod/admin"] {
        assert_eq!(report["services"][s]["verdict"], "stable", "{report}");
    }

    // No secret value in anything printed.
    let printed = format!("{stderr}{}", String::from_utf8_lossy(&out.stdout));
    assert!(!printed.contains(v["password"].as_str().unwrap()));

    // The tags say when and what was deployed.
    let d = c
        .describe_secret()
        .secret_id("prod/api/db")
        .send()
        .await
        .unwrap();
    let tag = |k: &str| {
        d.tags()
            .iter()
            .find(|t| t.key() == Some(k))
            .and_then(|t| t.value())
            .map(str::to_owned)
    };
    assert_eq!(
        tag("secret-rotator:deployed-version").as_deref(),
        Some(after["AWSCURRENT"][0].as_str())
    );
    assert!(tag("secret-rotator:last-rotated").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolled_back_consumer_fails_the_rotation_and_names_the_service() {
    let moto = Moto::start();
    let seed = SEED.replace(
        r#"{"name":"pdf","desiredCount":1}"#,
        r#"{"name":"pdf","desiredCount":1,"behavior":"failing"}"#,
    );
    let sim = EcsSim::start(&["--time-scale", "20"], &seed);
    let c = sm_client(&moto.url).await;
    create_secret(&c, "prod/api/db", r#"{"password":"initial"}"#, &[]).await;
    let dir = config_dir(CONFIG);

    let out = rotator(
        &["rotate", "api-db", "--config", dir.path().to_str().unwrap()],
        &aws_env(Some(&moto.url), Some(&sim.url)),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // The failure says the state, once: the value moved, who runs it, who does not and
    // why (the ECS reason once, not once per log line), and the next command to run.
    assert!(
        stderr.contains("error: api-db: rotation failed at step wait (rolled_back)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("AWSCURRENT already moved to the new version"),
        "{stderr}"
    );
    assert!(
        stderr.contains("running the new value: prod/admin, prod/api, prod/front"),
        "{stderr}"
    );
    assert!(
        stderr.contains("NOT running the new value (still on the previous one): prod/pdf"),
        "{stderr}"
    );
    let reason_lines = stderr
        .lines()
        .filter(|l| l.contains("circuit breaker") || l.contains("rolled back:"))
        .count();
    assert_eq!(reason_lines, 1, "the ECS reason once:\n{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        "  next: fix prod/pdf, then `secret-rotator rotate api-db` (redeploy only: no new value is made)",
        "{stderr}"
    );
    // Progress lines only: no raw log lines (timestamps, levels) mixed in.
    assert!(
        !stderr.contains(" WARN ") && !stderr.contains(" INFO "),
        "{stderr}"
    );
    // The value was rotated (AWSCURRENT moved) but not marked as deployed: the next run
    // redeploys instead of generating yet another value.
    let d = c
        .describe_secret()
        .secret_id("prod/api/db")
        .send()
        .await
        .unwrap();
    assert!(
        d.tags()
            .iter()
            .all(|t| t.key() != Some("secret-rotator:last-rotated")),
        "last-rotated must not be written"
    );
    // `plan` says what is still owed: the value moved, the redeploy did not finish.
    let plan = rotator(
        &["plan", "--config", dir.path().to_str().unwrap()],
        &aws_env(Some(&moto.url), Some(&sim.url)),
    );
    let table = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let row = table
        .lines()
        .find(|l| l.starts_with("api-db"))
        .unwrap_or_default();
    assert!(row.contains("redeploy pending"), "{table}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_changes_nothing() {
    let moto = Moto::start();
    let sim = EcsSim::start(&["--time-scale", "10"], SEED);
    let c = sm_client(&moto.url).await;
    create_secret(&c, "prod/api/db", r#"{"password":"initial"}"#, &[]).await;
    let dir = config_dir(CONFIG);
    let out = rotator(
        &[
            "rotate",
            "api-db",
            "--dry-run",
            "--config",
            dir.path().to_str().unwrap(),
        ],
        &aws_env(Some(&moto.url), Some(&sim.url)),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("nothing was changed"), "{stdout}");
    assert_eq!(version_count(&c, "prod/api/db").await, 1);
    assert_eq!(
        value_at(&c, "prod/api/db", "AWSCURRENT").await,
        r#"{"password":"initial"}"#
    );
    assert!(
        sim.calls().get("UpdateService").is_none(),
        "{}",
        sim.calls()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn code_deploy_consumer_is_refused_before_any_change() {
    let moto = Moto::start();
    let seed = SEED.replace(
        r#"{"name":"admin","desiredCount":1}"#,
        r#"{"name":"admin","desiredCount":1,"deploymentController":"CODE_DEPLOY"}"#,
    );
    let sim = EcsSim::start(&["--time-scale", "10"], &seed);
    let c = sm_client(&moto.url).await;
    create_secret(&c, "prod/api/db", r#"{"password":"initial"}"#, &[]).await;
    let dir = config_dir(CONFIG);
    let out = rotator(
        &["rotate", "api-db", "--config", dir.path().to_str().unwrap()],
        &aws_env(Some(&moto.url), Some(&sim.url)),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("prod/admin") && stderr.contains("CODE_DEPLOY"),
        "{stderr}"
    );
    assert_eq!(
        version_count(&c, "prod/api/db").await,
        1,
        "nothing may be written"
    );

    // check --remote says so too, up front.
    let out = rotator(
        &[
            "check",
            "--remote",
            "--config",
            dir.path().to_str().unwrap(),
        ],
        &aws_env(Some(&moto.url), Some(&sim.url)),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("prod/admin uses the CODE_DEPLOY deployment controller"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_remote_reports_every_problem_at_once() {
    let moto = Moto::start();
    let sim = EcsSim::start(&["--time-scale", "10"], SEED);
    let c = sm_client(&moto.url).await;
    create_secret(&c, "prod/api/db", r#"{"password":"initial"}"#, &[]).await;
    let cfg = format!("{CONFIG}\n[[secret]]\nname = \"ghost\"\nsecret_id = \"prod/ghost\"\nevery = \"30d\"\nredeploy = [{{ cluster = \"prod\", services = [\"nope\"] }}]\n");
    let dir = config_dir(&cfg);
    let out = rotator(
        &[
            "check",
            "--remote",
            "--config",
            dir.path().to_str().unwrap(),
        ],
        &aws_env(Some(&moto.url), Some(&sim.url)),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("ghost: secret prod/ghost: DescribeSecret: ResourceNotFoundException"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ghost: service prod/nope not found"),
        "{stderr}"
    );
    assert!(stderr.contains("error: 2 remote problem(s)"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_after_put_then_rerun_yields_the_same_single_version() {
    let crash_bin = repo_root().join("target/failpoints/secret-rotator");
    assert!(
        crash_bin.exists(),
        "{} missing: scripts/test builds it (cargo build --features failpoints)",
        crash_bin.display()
    );
    let moto = Moto::start();
    let sim = EcsSim::start(&["--time-scale", "10"], SEED);
    let c = sm_client(&moto.url).await;
    create_secret(&c, "prod/api/db", r#"{"password":"initial"}"#, &[]).await;
    let old = stages(&c, "prod/api/db").await["AWSCURRENT"][0].clone();
    let dir = config_dir(CONFIG);
    let env = aws_env(Some(&moto.url), Some(&sim.url));

    let mut cmd = std::process::Command::new(&crash_bin);
    cmd.args(["rotate", "api-db", "--config", dir.path().to_str().unwrap()])
        .env("SECRET_ROTATOR_CRASH_AT", "after-create");
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "the crash build must abort");
    let mid = stages(&c, "prod/api/db").await;
    let pending = mid["AWSPENDING"][0].clone();
    assert_eq!(mid["AWSCURRENT"], vec![old.clone()]);
    let pending_value = c
        .get_secret_value()
        .secret_id("prod/api/db")
        .version_id(&pending)
        .version_stage("AWSPENDING")
        .send()
        .await
        .unwrap()
        .secret_string()
        .unwrap()
        .to_owned();

    let out = rotator(
        &["rotate", "api-db", "--config", dir.path().to_str().unwrap()],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let end = stages(&c, "prod/api/db").await;
    assert_eq!(
        end["AWSCURRENT"],
        vec![pending.clone()],
        "the rerun finishes the version the crashed run wrote"
    );
    assert_eq!(end["AWSPREVIOUS"], vec![old]);
    assert!(!end.contains_key("AWSPENDING"));
    assert_eq!(version_count(&c, "prod/api/db").await, 2);
    assert_eq!(
        value_at(&c, "prod/api/db", "AWSCURRENT").await,
        pending_value
    );
}
