//! Rotation groups through the real binary against moto (Secrets Manager) and ecs-sim
//! (ECS, real rollout waits): a three-stage group rotates dev, then staging, then prod
//! with the soak between; a rolled-back staging halts the group with prod's value
//! untouched; a hold put by `group NAME hold` keeps the daemon from starting anything.

mod common;

use common::receiver::Receiver;
use common::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SEED: &str = r#"{"clusters":[{"name":"prod","services":[
  {"name":"dev-api","desiredCount":1,"startSecs":20,"drainSecs":10},
  {"name":"staging-api","desiredCount":1,"startSecs":20,"drainSecs":10},
  {"name":"prod-api","desiredCount":2,"startSecs":20,"drainSecs":10}]}]}"#;

const FAILING_STAGING: &str = r#"{"clusters":[{"name":"prod","services":[
  {"name":"dev-api","desiredCount":1,"startSecs":20,"drainSecs":10},
  {"name":"staging-api","desiredCount":1,"behavior":"failing","startSecs":20},
  {"name":"prod-api","desiredCount":2,"startSecs":20,"drainSecs":10}]}]}"#;

const STAGES: [&str; 3] = ["dev", "staging", "prod"];
const OLD: [(&str, &str); 1] = [("secret-rotator:last-rotated", "2026-01-01T00:00:00Z")];

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &std::path::Path, env: &[(String, String)]) -> Daemon {
    let mut cmd = Command::new(rotator_bin());
    cmd.args(["run", "--config", dir.to_str().unwrap()])
        .env_remove("AWS_PROFILE")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(match std::env::var_os("GROUP_WIRE_LOG") {
            Some(p) => Stdio::from(std::fs::File::create(p).unwrap()),
            None => Stdio::null(),
        });
    for (k, v) in env {
        cmd.env(k, v);
    }
    Daemon(cmd.spawn().expect("start daemon"))
}

fn config(port: u16, soak: &str, retry: &str) -> ConfigDir {
    config_with(port, soak, retry, "")
}

fn config_with(port: u16, soak: &str, retry: &str, extra: &str) -> ConfigDir {
    let mut toml = format!(
        "[daemon]\nlisten = \"127.0.0.1:{port}\"\nretry_initial = \"{retry}\"\nmax_attempts = 2\n"
    );
    for s in STAGES {
        toml.push_str(&format!(
            "\n[[secret]]\nname = \"api-db-{s}\"\nsecret_id = \"app/{s}\"\nevery = \"30d\"\nstable_timeout = \"1m\"\nredeploy = [{{ cluster = \"prod\", services = [\"{s}-api\"] }}]\n"
        ));
    }
    toml.push_str(&format!(
        "\n[[group]]\nname = \"api-db\"\nsecrets = [\"api-db-dev\", \"api-db-staging\", \"api-db-prod\"]\nsoak = \"{soak}\"\n"
    ));
    toml.push_str(extra);
    config_dir(&toml)
}

async fn tag(c: &aws_sdk_secretsmanager::Client, id: &str, key: &str) -> Option<String> {
    let d = c
        .describe_secret()
        .secret_id(id)
        .send()
        .await
        .expect("describe");
    d.tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value().map(str::to_owned))
}

/// The stage's confirmed rotation time (Unix seconds), if it rotated in this test.
async fn rotated(c: &aws_sdk_secretsmanager::Client, stage: &str) -> Option<i64> {
    let t = tag(c, &format!("app/{stage}"), "secret-rotator:last-rotated").await?;
    let t = chrono::DateTime::parse_from_rfc3339(&t).ok()?.timestamp();
    (t > 1_767_225_600).then_some(t)
}

fn wait_metric(url: &str, series: &str, at_least: f64, timeout: Duration) -> String {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < timeout {
        if let Ok((_, body)) = http_get(url) {
            if metric(&body, series).is_some_and(|v| v >= at_least) {
                return body;
            }
            last = body;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{series} did not reach {at_least} within {timeout:?}; last scrape:\n{last}");
}

fn cli(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(String, String)],
) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(rotator_bin());
    cmd.args(args)
        .args(["--config", dir.to_str().unwrap()])
        .env_remove("AWS_PROFILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the CLI");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// moto and ecs-sim with the three stages' secrets (last rotated long ago) and services.
struct World {
    moto: Moto,
    sim: EcsSim,
    c: aws_sdk_secretsmanager::Client,
    port: u16,
}

impl World {
    async fn new(seed: &str) -> Self {
        let moto = Moto::start();
        let sim = EcsSim::start(&["--time-scale", "20"], seed);
        let c = sm_client(&moto.url).await;
        for s in STAGES {
            create_secret(&c, &format!("app/{s}"), "initial-Value-1234", &OLD).await;
        }
        Self {
            moto,
            sim,
            c,
            port: free_port(),
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        aws_env(Some(&self.moto.url), Some(&self.sim.url))
    }

    fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.port)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_three_stage_group_rotates_in_order_with_the_soak_between() {
    let w = World::new(SEED).await;
    let c = &w.c;
    let dir = config(w.port, "8s", "2s");
    let env = w.env();
    let _d = start(dir.path(), &env);
    let url = w.metrics_url();
    let body = wait_metric(
        &url,
        "secret_rotator_rotations_total{outcome=\"success\",secret=\"api-db-prod\"}",
        1.0,
        Duration::from_secs(120),
    );
    let dev = rotated(c, "dev").await.expect("dev rotated");
    let staging = rotated(c, "staging").await.expect("staging rotated");
    let prod = rotated(c, "prod").await.expect("prod rotated");
    assert!(
        staging >= dev + 8,
        "staging at {staging}, dev confirmed at {dev}: soak not respected"
    );
    assert!(
        prod >= staging + 8,
        "prod at {prod}, staging confirmed at {staging}: soak not respected"
    );
    for s in STAGES {
        assert_eq!(
            version_count(c, &format!("app/{s}")).await,
            2,
            "{s}: one new value"
        );
    }
    assert_eq!(
        metric(&body, "secret_rotator_group_halted{group=\"api-db\"}"),
        Some(0.0),
        "{body}"
    );
    // The cycle is complete: plan shows the group as one row; status says every stage is done.
    let (code, out, err) = cli(dir.path(), &["group", "api-db", "status", "--json"], &env);
    assert_eq!(code, Some(0), "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["current_stage"], serde_json::Value::Null, "{out}");
    // The next cycle starts with dev on its own schedule (30 days on).
    let st = v["stages"].as_array().unwrap();
    assert_eq!(st[0]["state"], "due", "{out}");
    let next =
        chrono::DateTime::parse_from_rfc3339(st[0]["expected_start"].as_str().unwrap()).unwrap();
    assert_eq!(next.timestamp(), dev + 30 * 86_400, "{out}");
    assert_eq!(
        (st[1]["state"].as_str(), st[2]["state"].as_str()),
        (Some("done"), Some("done")),
        "{out}"
    );
    let (code, out, err) = cli(dir.path(), &["plan"], &env);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("api-db (group)"), "{out}");
    assert!(out.contains("cycle complete"), "{out}");
    assert!(
        !out.lines().any(|l| l.starts_with("api-db-prod")),
        "members folded into the group row:\n{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolled_back_staging_halts_the_group_and_prod_is_untouched() {
    let w = World::new(FAILING_STAGING).await;
    let c = &w.c;
    let prod_current = stages(c, "app/prod").await["AWSCURRENT"].clone();
    // The retry comes in an hour: the halt lasts the whole test. Group events go to a
    // local webhook receiver.
    let receiver = Receiver::start(0);
    let dir = config_with(
        w.port,
        "2s",
        "1h",
        &format!(
            "\n[[notify]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"{}\"\ngroups = [\"api-db\"]\nevents = [\"succeeded\", \"group_halted\"]\n",
            receiver.url("/hook")
        ),
    );
    let env = w.env();
    let _d = start(dir.path(), &env);
    let url = w.metrics_url();
    let body = wait_metric(
        &url,
        "secret_rotator_group_halted{group=\"api-db\"}",
        1.0,
        Duration::from_secs(120),
    );
    assert_eq!(
        metric(
            &body,
            "secret_rotator_rotations_total{outcome=\"rolled_back\",secret=\"api-db-staging\"}"
        ),
        Some(1.0),
        "{body}"
    );
    // Far longer than the soak: prod still waits.
    std::thread::sleep(Duration::from_secs(10));
    assert!(rotated(c, "dev").await.is_some());
    assert_eq!(
        rotated(c, "staging").await,
        None,
        "staging confirmed although rolled back"
    );
    assert_eq!(
        stages(c, "app/prod").await["AWSCURRENT"],
        prod_current,
        "prod's value changed"
    );
    assert_eq!(
        version_count(c, "app/prod").await,
        1,
        "prod got a new version"
    );
    let (_, body) = http_get(&url).unwrap();
    assert_eq!(
        metric(
            &body,
            "secret_rotator_rotations_total{outcome=\"success\",secret=\"api-db-prod\"}"
        ),
        Some(0.0),
        "{body}"
    );
    assert_eq!(
        metric(&body, "secret_rotator_group_halted{group=\"api-db\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &body,
            "secret_rotator_group_current_stage{group=\"api-db\"}"
        ),
        Some(2.0)
    );
    let (_, out, _) = cli(dir.path(), &["group", "api-db", "status"], &env);
    assert!(out.contains("waiting for api-db-staging"), "{out}");
    // dev's success, then the halt: staging's rolled-back service and its ECS event.
    let got = receiver.wait_for("the group_halted event", Duration::from_secs(30), |r| {
        r.iter().any(|r| r.json()["kind"] == "group_halted")
    });
    let kinds: Vec<String> = got
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r.json()["kind"].as_str().unwrap_or("?"),
                r.json()["secret"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect();
    assert_eq!(
        kinds,
        ["succeeded api-db-dev", "group_halted api-db-staging"],
        "{kinds:?}"
    );
    let halted = got[1].json();
    assert_eq!(halted["group"]["name"], "api-db", "{halted}");
    assert_eq!(halted["group"]["next"], "api-db-prod", "{halted}");
    assert_eq!(halted["outcome"], "rolled_back", "{halted}");
    let c = &halted["consumers"][0];
    assert_eq!(
        (c["consumer"].as_str(), c["verdict"].as_str()),
        (Some("prod/staging-api"), Some("rolled_back")),
        "{halted}"
    );
    let events = c["events"].as_array().unwrap();
    assert!(
        events.iter().any(|e| e
            .as_str()
            .is_some_and(|e| e.contains("staging-api") && e.contains("failed"))),
        "no ECS event naming the failed deployment: {halted}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_group_is_not_started_by_the_daemon() {
    let w = World::new(SEED).await;
    let c = &w.c;
    let dir = config(w.port, "2s", "2s");
    let env = w.env();
    let (code, out, err) = cli(
        dir.path(),
        &["group", "api-db", "hold", "--reason", "INC-42 freeze"],
        &env,
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let held = tag(c, "app/dev", "secret-rotator:group-hold")
        .await
        .unwrap();
    assert!(
        held.starts_with("held ") && held.ends_with("INC-42 freeze"),
        "{held}"
    );
    let _d = start(dir.path(), &env);
    let url = w.metrics_url();
    let body = wait_metric(
        &url,
        "secret_rotator_group_held{group=\"api-db\"}",
        1.0,
        Duration::from_secs(30),
    );
    std::thread::sleep(Duration::from_secs(8));
    for s in STAGES {
        assert_eq!(
            version_count(c, &format!("app/{s}")).await,
            1,
            "{s} rotated while held\n{body}"
        );
    }
    let (code, out, _) = cli(dir.path(), &["group", "api-db", "status"], &env);
    assert_eq!(code, Some(0));
    assert!(out.contains("HELD (held "), "{out}");
    // A manual rotate of a held group's stage is refused (nothing written) unless forced.
    let (code, _, err) = cli(dir.path(), &["rotate", "api-db-dev"], &env);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("group api-db, which is held"), "{err}");
    assert_eq!(version_count(c, "app/dev").await, 1);
    let (code, out, err) = cli(dir.path(), &["group", "api-db", "resume"], &env);
    assert_eq!(code, Some(0), "{out}{err}");
    let after = tag(c, "app/dev", "secret-rotator:group-hold")
        .await
        .unwrap();
    assert!(after.starts_with("resumed "), "{after}");
    let (_, out, _) = cli(dir.path(), &["group", "api-db", "status"], &env);
    assert!(out.contains("not held"), "{out}");
    // Out of turn: the next cycle starts with dev, not prod.
    let (code, _, err) = cli(dir.path(), &["rotate", "api-db-prod"], &env);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not its turn (done this cycle"), "{err}");
    assert_eq!(version_count(c, "app/prod").await, 1);
    // An unknown group is a usage error.
    let (code, _, err) = cli(dir.path(), &["group", "nope", "status"], &env);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("groups: api-db"), "{err}");
}
