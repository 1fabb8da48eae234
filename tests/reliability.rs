//! Reliability on the real wire (moto + ecs-sim): a crash at every protocol step, two
//! daemons on the same secrets, injected AWS faults, and no secret value in any output.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SEED: &str = r#"{"clusters":[{"name":"prod","services":[
  {"name":"front","desiredCount":2},{"name":"api","desiredCount":1}]}]}"#;

fn crash_bin() -> std::path::PathBuf {
    let p = repo_root().join("target/failpoints/secret-rotator");
    assert!(
        p.exists(),
        "{} missing: scripts/test builds it (cargo build --features failpoints)",
        p.display()
    );
    p
}

fn tag(
    d: &aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput,
    k: &str,
) -> Option<String> {
    d.tags()
        .iter()
        .find(|t| t.key() == Some(k))
        .and_then(|t| t.value())
        .map(str::to_owned)
}

/// The end state every interrupted rotation must reach once rerun.
async fn assert_rotated_once(
    c: &aws_sdk_secretsmanager::Client,
    id: &str,
    old: &str,
    what: &str,
) -> String {
    let st = stages(c, id).await;
    assert_eq!(
        version_count(c, id).await,
        2,
        "{what}: exactly one new version: {st:?}"
    );
    assert_eq!(st["AWSPREVIOUS"], vec![old.to_owned()], "{what}: {st:?}");
    assert!(
        !st.contains_key("AWSPENDING"),
        "{what}: AWSPENDING left: {st:?}"
    );
    let current = st["AWSCURRENT"][0].clone();
    assert_ne!(current, old, "{what}");
    let d = c.describe_secret().secret_id(id).send().await.unwrap();
    assert_eq!(
        tag(&d, "secret-rotator:deployed-version").as_deref(),
        Some(current.as_str()),
        "{what}"
    );
    assert!(tag(&d, "secret-rotator:last-rotated").is_some(), "{what}");
    current
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_at_every_step_is_finished_by_the_next_run() {
    let points = [
        "after-create",
        "after-set",
        "after-test",
        "after-move-current",
        "after-remove-pending",
        "after-update-service",
        "during-wait",
    ];
    let moto = Moto::start();
    let sim = EcsSim::start(&["--time-scale", "20"], SEED);
    let c = sm_client(&moto.url).await;
    let env = aws_env(Some(&moto.url), Some(&sim.url));
    let mut cfg = String::new();
    for p in points {
        create_secret(&c, &format!("crash/{p}"), "initial", &[]).await;
        cfg.push_str(&format!("[[secret]]\nname = \"{p}\"\nsecret_id = \"crash/{p}\"\nevery = \"30d\"\nredeploy = [{{ cluster = \"prod\", services = [\"front\", \"api\"] }}]\n"));
    }
    let dir = config_dir(&cfg);
    for p in points {
        let id = format!("crash/{p}");
        let old = stages(&c, &id).await["AWSCURRENT"][0].clone();
        let mut cmd = Command::new(crash_bin());
        cmd.args(["rotate", p, "--config", dir.path().to_str().unwrap()])
            .env("SECRET_ROTATOR_CRASH_AT", p)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("failpoint {p}")),
            "{p}: the crash point was not reached: {stderr}"
        );
        let before = sim.calls()["UpdateService"].as_u64().unwrap_or(0);
        let mid_current = stages(&c, &id).await["AWSCURRENT"][0].clone();

        let out = rotator(
            &["rotate", p, "--config", dir.path().to_str().unwrap()],
            &env,
        );
        assert!(
            out.status.success(),
            "{p}: rerun failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let current = assert_rotated_once(&c, &id, &old, p).await;
        if mid_current != old {
            // The crash came after AWSCURRENT moved: the rerun must not make another value.
            assert_eq!(current, mid_current, "{p}");
        }
        // Every consumer is redeployed at least once after the value became current.
        let after = sim.calls()["UpdateService"].as_u64().unwrap_or(0);
        let crashed_before_finish = mid_current == old;
        if crashed_before_finish || p.starts_with("after-remove") || p == "after-move-current" {
            assert!(
                after - before >= 2,
                "{p}: consumers not redeployed by the rerun ({before} -> {after})"
            );
        } else {
            // Crashed after forcing: the rerun forces again (it cannot trust deployments it
            // did not see finish) — at least once after finish either way.
            assert!(after >= 2, "{p}");
        }
    }
}

/// Consumers restarted by command: a crash after the finish and before they were
/// confirmed (before they ran, or after they ran but before the rotation was recorded)
/// is finished by the next run, which runs them again (nothing records that they ran
/// after the value became current) and makes no second value.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_before_the_consumer_commands_are_confirmed_runs_them_again() {
    use std::os::unix::fs::PermissionsExt;
    let points = [
        "after-move-current",
        "after-remove-pending",
        "after-consumer-commands",
    ];
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    let env = aws_env(Some(&moto.url), None);
    let work = tempfile::tempdir().unwrap();
    let restart = work.path().join("restart.sh");
    std::fs::write(
        &restart,
        format!(
            "#!/bin/sh\necho \"$SECRET_ROTATOR_SECRET $SECRET_ROTATOR_VERSION\" >> '{}/runs'\n",
            work.path().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&restart, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cfg = String::new();
    for p in points {
        create_secret(&c, &format!("crash-cmd/{p}"), "initial", &[]).await;
        cfg.push_str(&format!("[[secret]]\nname = \"{p}\"\nsecret_id = \"crash-cmd/{p}\"\nevery = \"30d\"\nredeploy = [{{ command = [\"{}\"] }}]\n", restart.display()));
    }
    let dir = config_dir(&cfg);
    let runs = |p: &str| -> Vec<String> {
        std::fs::read_to_string(work.path().join("runs"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with(&format!("{p} ")))
            .map(|l| l[p.len() + 1..].to_owned())
            .collect()
    };
    for p in points {
        let id = format!("crash-cmd/{p}");
        let old = stages(&c, &id).await["AWSCURRENT"][0].clone();
        let mut cmd = Command::new(crash_bin());
        cmd.args(["rotate", p, "--config", dir.path().to_str().unwrap()])
            .env("SECRET_ROTATOR_CRASH_AT", p)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("failpoint {p}")),
            "{p}: the crash point was not reached: {stderr}"
        );
        let before = runs(p).len();
        assert_eq!(before, usize::from(p == "after-consumer-commands"), "{p}");
        let mid_current = stages(&c, &id).await["AWSCURRENT"][0].clone();
        assert_ne!(mid_current, old, "{p}: the crash points are after the move");

        let out = rotator(
            &["rotate", p, "--config", dir.path().to_str().unwrap()],
            &env,
        );
        assert!(
            out.status.success(),
            "{p}: rerun failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let current = assert_rotated_once(&c, &id, &old, p).await;
        assert_eq!(current, mid_current, "{p}: a second value was made");
        let after = runs(p);
        assert_eq!(
            after.len(),
            before + 1,
            "{p}: the command did not run again"
        );
        assert_eq!(after.last(), Some(&current), "{p}: run for another version");
    }
}

fn daemon(dir: &std::path::Path, env: &[(String, String)], log: Option<&std::path::Path>) -> Bg {
    let mut cmd = Command::new(rotator_bin());
    cmd.args(["run", "--config", dir.to_str().unwrap()])
        .stdout(Stdio::null());
    match log {
        Some(p) => cmd.stderr(std::fs::File::create(p).unwrap()),
        None => cmd.stderr(Stdio::null()),
    };
    for (k, v) in env {
        cmd.env(k, v);
    }
    Bg(cmd.spawn().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_make_one_version_per_secret() {
    const N: usize = 50;
    let moto = Moto::start();
    // One consumer service per secret: the replicas race on each secret and its redeploy.
    let services: Vec<String> = (0..N)
        .map(|i| format!(r#"{{"name":"svc{i}","desiredCount":1}}"#))
        .collect();
    let seed = format!(
        r#"{{"clusters":[{{"name":"prod","services":[{}]}}]}}"#,
        services.join(",")
    );
    let sim = EcsSim::start(&["--time-scale", "20"], &seed);
    let c = sm_client(&moto.url).await;
    let mut secrets = String::new();
    for i in 0..N {
        create_secret(
            &c,
            &format!("rep/{i}"),
            "initial",
            &[("secret-rotator:last-rotated", "2026-01-01T00:00:00Z")],
        )
        .await;
        secrets.push_str(&format!("[[secret]]\nname = \"s{i}\"\nsecret_id = \"rep/{i}\"\nevery = \"30d\"\nredeploy = [{{ cluster = \"prod\", services = [\"svc{i}\"] }}]\n"));
    }
    let env = aws_env(Some(&moto.url), Some(&sim.url));
    let (pa, pb) = (free_port(), free_port());
    let da = config_dir(&format!(
        "[daemon]\nlisten = \"127.0.0.1:{pa}\"\nretry_initial = \"1s\"\nretry_max = \"4s\"\nmax_starts_per_minute = 10000\n{secrets}"
    ));
    let db = config_dir(&format!(
        "[daemon]\nlisten = \"127.0.0.1:{pb}\"\nretry_initial = \"1s\"\nretry_max = \"4s\"\nmax_starts_per_minute = 10000\n{secrets}"
    ));
    let _a = daemon(
        da.path(),
        &env,
        std::env::var("REPLICA_LOGS")
            .ok()
            .map(|d| std::path::PathBuf::from(d).join("a.log"))
            .as_deref(),
    );
    let _b = daemon(
        db.path(),
        &env,
        std::env::var("REPLICA_LOGS")
            .ok()
            .map(|d| std::path::PathBuf::from(d).join("b.log"))
            .as_deref(),
    );

    // Done when every secret is tagged as deployed.
    let start = Instant::now();
    loop {
        let mut done = 0;
        for i in 0..N {
            let d = c
                .describe_secret()
                .secret_id(format!("rep/{i}"))
                .send()
                .await
                .unwrap();
            done += usize::from(
                tag(&d, "secret-rotator:last-rotated").as_deref() != Some("2026-01-01T00:00:00Z"),
            );
        }
        if done == N {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "only {done}/{N} rotated"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Let both finish what they started before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for i in 0..N {
        let id = format!("rep/{i}");
        let st = stages(&c, &id).await;
        // moto silently overwrites a pending version on a token clash (AWS refuses), so we
        // count versions rather than trust its errors.
        assert_eq!(version_count(&c, &id).await, 2, "{id}: {st:?}");
        assert!(!st.contains_key("AWSPENDING"), "{id}: {st:?}");
    }
    // Each replica forces at most one deployment per secret it worked on.
    let forced = sim.calls()["UpdateService"].as_u64().unwrap_or(0);
    assert!(
        forced >= N as u64 && forced <= 2 * N as u64,
        "{forced} forced deployments for {N} secrets"
    );
    eprintln!("two replicas: {forced} forced deployments for {N} secrets");
}

#[tokio::test(flavor = "multi_thread")]
async fn rotations_complete_through_throttling_errors_and_dropped_connections() {
    let moto = Moto::start();
    let proxy_bin = bin_dir().join("fault-proxy");
    assert!(
        proxy_bin.exists(),
        "{} missing: cargo build --workspace --bins",
        proxy_bin.display()
    );
    let mut child = Command::new(proxy_bin)
        .args([
            "--upstream",
            &moto.url,
            "--throttle-rate",
            "0.3",
            "--error-rate",
            "0.1",
            "--drop-rate",
            "0.03",
            "--drop-after-rate",
            "0.03",
            "--latency-ms",
            "5",
            "--seed",
            "7",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _proxy = Bg(child);
    let proxy_url = line.trim().rsplit(' ').next().unwrap().to_owned();
    let sim = EcsSim::start(
        &[
            "--time-scale",
            "20",
            "--throttle-rate",
            "0.3",
            "--error-rate",
            "0.1",
            "--rng-seed",
            "3",
        ],
        SEED,
    );
    let c = sm_client(&moto.url).await;
    let n = 8;
    let port = free_port();
    let mut cfg = format!(
        "[daemon]\nlisten = \"127.0.0.1:{port}\"\nretry_initial = \"1s\"\nretry_max = \"4s\"\nmax_starts_per_minute = 10000\n"
    );
    for i in 0..n {
        create_secret(
            &c,
            &format!("fault/{i}"),
            "initial",
            &[("secret-rotator:last-rotated", "2026-01-01T00:00:00Z")],
        )
        .await;
        cfg.push_str(&format!("[[secret]]\nname = \"f{i}\"\nsecret_id = \"fault/{i}\"\nevery = \"30d\"\nredeploy = [{{ cluster = \"prod\", services = [\"front\", \"api\"] }}]\n"));
    }
    let dir = config_dir(&cfg);
    let _d = daemon(dir.path(), &aws_env(Some(&proxy_url), Some(&sim.url)), None);
    let start = Instant::now();
    let body = loop {
        let body = http_get(&format!("http://127.0.0.1:{port}/metrics"))
            .map(|r| r.1)
            .unwrap_or_default();
        if metric_sum(&body, "secret_rotator_rotations_total{outcome=\"success\"") >= n as f64 {
            break body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "rotations did not complete under faults:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for i in 0..n {
        let id = format!("fault/{i}");
        assert_eq!(
            version_count(&c, &id).await,
            2,
            "{id}: duplicate versions under faults: {:?}",
            stages(&c, &id).await
        );
        assert!(!stages(&c, &id).await.contains_key("AWSPENDING"));
    }
    // The retries are visible in the call metrics.
    assert!(
        metric_sum(
            &body,
            "secret_rotator_aws_api_calls_total{operation=\"PutSecretValue\",outcome=\"throttled\""
        ) + metric_sum(
            &body,
            "secret_rotator_aws_api_calls_total{operation=\"DescribeSecret\",outcome=\"throttled\""
        ) > 0.0,
        "{body}"
    );
    assert!(
        body.lines()
            .any(|l| l.contains("service=\"ecs\"") && l.contains("outcome=\"throttled\"")),
        "{body}"
    );
    assert!(
        body.lines().any(|l| l.contains("outcome=\"error\"")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_value_in_any_output() {
    let moto = Moto::start();
    let sim = EcsSim::start(&["--time-scale", "20"], SEED);
    let c = sm_client(&moto.url).await;
    create_secret(
        &c,
        "leak/json",
        r#"{"username":"app","password":"initial"}"#,
        &[("secret-rotator:last-rotated", "2026-01-01T00:00:00Z")],
    )
    .await;
    create_secret(
        &c,
        "leak/plain",
        "initial",
        &[("secret-rotator:last-rotated", "2026-01-01T00:00:00Z")],
    )
    .await;
    let port = free_port();
    // Every sink kind: webhook, Slack and change records to a local receiver, SNS to moto.
    let hook = common::receiver::Receiver::start(0);
    let (topic, queue) = common::sns::sns_topic_with_queue(&moto.url, "leak").await;
    let sinks = format!(
        r#"
[[notify]]
name = "hook"
kind = "webhook"
url = "{}"
secret_env = "LEAK_HOOK_KEY"
headers = {{ Authorization = "Bearer leak-test-token" }}
[[notify]]
name = "chat"
kind = "slack"
url = "{}"
[[notify]]
name = "itsm"
kind = "change-record"
open_url = "{}"
close_url = "{}"
secret_env = "LEAK_HOOK_KEY"
[[notify]]
name = "topic"
kind = "sns"
topic_arn = "{topic}"
endpoint = "{}"
"#,
        hook.url("/hook"),
        hook.url("/slack"),
        hook.url("/open"),
        hook.url("/close"),
        moto.url
    );
    let dir = config_dir(&format!(
        "[daemon]\nlisten = \"127.0.0.1:{port}\"\n[[secret]]\nname = \"json\"\nsecret_id = \"leak/json\"\nevery = \"1m\"\nallow_short_interval = true\njson_key = \"password\"\nredeploy = [{{ cluster = \"prod\", services = [\"front\"] }}]\n[[secret]]\nname = \"plain\"\nsecret_id = \"leak/plain\"\nevery = \"1m\"\nallow_short_interval = true\n{sinks}"
    ));
    let mut env = aws_env(Some(&moto.url), Some(&sim.url));
    env.push(("LEAK_HOOK_KEY".into(), "leak-test-hmac-key".into()));
    env.push(("RUST_LOG".into(), "trace".into()));
    let mut captured = String::new();

    // One-shot commands at trace level, text and JSON.
    for args in [
        vec!["rotate", "plain", "--json"],
        vec!["rotate", "json"],
        vec!["rotate", "json", "--dry-run", "--json"],
        vec!["plan", "--json"],
        vec!["check", "--remote"],
    ] {
        let mut cmd = Command::new(rotator_bin());
        cmd.args(&args).args([
            "--config",
            dir.path().to_str().unwrap(),
            "--log-format",
            "json",
        ]);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        captured.push_str(&String::from_utf8_lossy(&out.stdout));
        captured.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    // The daemon at trace level, plus what it serves: make both secrets overdue again.
    for id in ["leak/json", "leak/plain"] {
        c.tag_resource()
            .secret_id(id)
            .tags(
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key("secret-rotator:last-rotated")
                    .value("2026-01-01T00:00:00Z")
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    let log = tempfile::NamedTempFile::new().unwrap();
    let d = daemon(dir.path(), &env, Some(log.path()));
    let start = Instant::now();
    loop {
        let body = http_get(&format!("http://127.0.0.1:{port}/metrics"))
            .map(|r| r.1)
            .unwrap_or_default();
        if metric_sum(&body, "secret_rotator_rotations_total{outcome=\"success\"") >= 2.0 {
            captured.push_str(&body);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "daemon did not rotate"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for path in ["/healthz", "/readyz"] {
        captured.push_str(
            &http_get(&format!("http://127.0.0.1:{port}{path}"))
                .unwrap()
                .1,
        );
    }
    // What the sinks received: started and succeeded of both secrets on each (the
    // change records: an open and a close each).
    let received = hook.wait_for("every sink's deliveries", Duration::from_secs(60), |r| {
        ["/hook", "/slack", "/open", "/close"]
            .iter()
            .all(|p| r.iter().filter(|q| q.path == *p).count() >= 2)
    });
    assert!(!received.is_empty());
    captured.push_str(&hook.all_text());
    for m in common::sns::sns_messages(&moto.url, &queue, 4).await {
        captured.push_str(&m.to_string());
    }
    drop(d);
    captured.push_str(&std::fs::read_to_string(log.path()).unwrap());
    // Neither the HMAC key nor a header value is ever logged or sent in a body.
    let log_text = std::fs::read_to_string(log.path()).unwrap();
    assert!(!log_text.contains("leak-test-hmac-key") && !log_text.contains("leak-test-token"));
    assert!(
        captured.len() > 10_000,
        "suspiciously little output captured ({} bytes)",
        captured.len()
    );

    // Every value any version ever held (except the seeds we wrote).
    let mut values = Vec::new();
    for id in ["leak/json", "leak/plain"] {
        let versions = c
            .list_secret_version_ids()
            .secret_id(id)
            .include_deprecated(true)
            .send()
            .await
            .unwrap();
        for v in versions.versions() {
            let got = c
                .get_secret_value()
                .secret_id(id)
                .version_id(v.version_id().unwrap())
                .send()
                .await;
            if let Ok(g) = got {
                let s = g.secret_string().unwrap_or_default().to_owned();
                let inner = serde_json::from_str::<serde_json::Value>(&s)
                    .ok()
                    .and_then(|j| j["password"].as_str().map(str::to_owned));
                values.push(inner.unwrap_or(s));
            }
        }
    }
    values.retain(|v| v != "initial");
    assert!(
        values.len() >= 3,
        "expected several generated values, got {}",
        values.len()
    );
    for v in &values {
        assert!(
            !captured.contains(v.as_str()),
            "a generated value appears in the output"
        );
        let b64 = base64_encode(v.as_bytes());
        assert!(
            !captured.contains(&b64),
            "a generated value appears base64-encoded in the output"
        );
        // And JSON-escaped, as it would appear inside a logged request body.
        let escaped = serde_json::to_string(v).unwrap();
        assert!(
            !captured.contains(escaped.trim_matches('"')),
            "a generated value appears JSON-escaped"
        );
    }
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Runs `rotate NAME` at `RUST_LOG=trace`, in JSON and in text, and returns everything
/// printed.
fn rotate_at_trace(dir: &std::path::Path, name: &str, env: &[(String, String)]) -> String {
    let mut captured = String::new();
    for format in ["json", "text"] {
        let mut cmd = Command::new(rotator_bin());
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

/// Which secret appears in `captured`, as is, base64-encoded or JSON-escaped.
fn leaked<'a>(captured: &str, secrets: &'a [(&'a str, String)]) -> Vec<&'a str> {
    secrets
        .iter()
        .filter(|(_, v)| {
            let escaped = serde_json::to_string(v).unwrap();
            captured.contains(v.as_str())
                || captured.contains(&base64_encode(v.as_bytes()))
                || captured.contains(escaped.trim_matches('"'))
        })
        .map(|(what, _)| *what)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_in_trace_output_of_postgres_iam_and_command_targets() {
    use common::postgres::{Postgres, ADMIN_PASSWORD, ADMIN_USER};
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    let env = aws_env(Some(&moto.url), None);
    let mut secrets: Vec<(&str, String)> = Vec::new();
    let mut captured = String::new();

    // PostgreSQL, alternating users: admin password, old and new passwords, verifiers.
    let pg = Postgres::start();
    let old_pw = "old-Pa55word-in-the-app-secret";
    pg.sql(&format!("CREATE ROLE app LOGIN PASSWORD '{old_pw}'"))
        .await;
    create_secret(&c, "leak/db", &pg.secret_json("app", old_pw), &[]).await;
    create_secret(
        &c,
        "leak/db-admin",
        &serde_json::json!({"username": ADMIN_USER, "password": ADMIN_PASSWORD}).to_string(),
        &[],
    )
    .await;
    let dir = config_dir(&format!(
        "[[secret]]\nname = \"db\"\nsecret_id = \"leak/db\"\nevery = \"30d\"\ntarget = {{ kind = \"postgres\", mode = \"alternating-users\", admin_secret_id = \"leak/db-admin\", host = \"127.0.0.1\", port = {}, role = \"app\", sslmode = \"disable\" }}\n",
        pg.port
    ));
    captured.push_str(&rotate_at_trace(dir.path(), "db", &env));
    for v in versions(&c, "leak/db").await {
        let doc: serde_json::Value = serde_json::from_str(&v).unwrap();
        secrets.push((
            "a database password",
            doc["password"].as_str().unwrap().to_owned(),
        ));
    }
    let verifiers = pg
        .admin()
        .await
        .query(
            "SELECT rolpassword FROM pg_authid WHERE rolname IN ('app', 'app_clone', $1)",
            &[&ADMIN_USER],
        )
        .await
        .unwrap();
    for r in verifiers {
        secrets.push(("a SCRAM verifier", r.get::<_, String>(0)));
    }
    secrets.push(("the admin password", ADMIN_PASSWORD.to_owned()));
    assert!(
        secrets
            .iter()
            .filter(|(w, _)| *w == "a database password")
            .count()
            >= 2,
        "the database rotation did not run: {captured}"
    );

    // IAM: the old and the new secret access key.
    let iam = aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::config::Builder::new()
            .endpoint_url(&moto.url)
            .region(aws_sdk_iam::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_iam::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .behavior_version_latest()
            .build(),
    );
    iam.create_user()
        .user_name("leak-user")
        .send()
        .await
        .unwrap();
    let k = iam
        .create_access_key()
        .user_name("leak-user")
        .send()
        .await
        .unwrap();
    let k = k.access_key().unwrap();
    create_secret(
        &c,
        "leak/key",
        &serde_json::json!({"AccessKeyId": k.access_key_id(), "SecretAccessKey": k.secret_access_key()}).to_string(),
        &[],
    )
    .await;
    let dir = config_dir(
        "[[secret]]\nname = \"key\"\nsecret_id = \"leak/key\"\nevery = \"30d\"\ntarget = { kind = \"iam-access-key\", user = \"leak-user\", delete_after = \"0s\" }\n",
    );
    captured.push_str(&rotate_at_trace(dir.path(), "key", &env));
    for v in versions(&c, "leak/key").await {
        let doc: serde_json::Value = serde_json::from_str(&v).unwrap();
        secrets.push((
            "a secret access key",
            doc["SecretAccessKey"].as_str().unwrap().to_owned(),
        ));
    }
    assert!(
        secrets
            .iter()
            .filter(|(w, _)| *w == "a secret access key")
            .count()
            >= 2,
        "the IAM rotation did not run: {captured}"
    );

    // command: a program that prints the value it gets, and its encodings, on both streams.
    let work = tempfile::tempdir().unwrap();
    let prog = work.path().join("echo-value.sh");
    std::fs::write(
        &prog,
        "#!/bin/sh\nv=$(cat)\necho \"value: $v\"\necho \"b64: $(printf %s \"$v\" | base64 -w0)\" >&2\necho \"hex: $(printf %s \"$v\" | od -An -tx1 | tr -d ' \\n')\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
    create_secret(&c, "leak/cmd", "initial-command-value", &[]).await;
    let dir = config_dir(&format!(
        "[[secret]]\nname = \"cmd\"\nsecret_id = \"leak/cmd\"\nevery = \"30d\"\ntarget = {{ kind = \"command\", set = [\"{}\"], test = [\"{}\"] }}\n",
        prog.display(),
        prog.display()
    ));
    captured.push_str(&rotate_at_trace(dir.path(), "cmd", &env));
    let cmd_values: Vec<String> = versions(&c, "leak/cmd")
        .await
        .into_iter()
        .filter(|v| v != "initial-command-value")
        .collect();
    assert!(
        cmd_values.len() >= 2,
        "the command rotation did not run: {captured}"
    );
    assert!(
        captured.contains("value: ***"),
        "the program's output was not logged masked"
    );
    for v in cmd_values {
        let hex: String = v.bytes().map(|b| format!("{b:02x}")).collect();
        secrets.push(("a command value (hex)", hex));
        secrets.push(("a command value", v));
    }

    let found = leaked(&captured, &secrets);
    assert!(found.is_empty(), "leaked at RUST_LOG=trace: {found:?}");
}

/// Every value any version of `id` holds.
async fn versions(c: &aws_sdk_secretsmanager::Client, id: &str) -> Vec<String> {
    let list = c
        .list_secret_version_ids()
        .secret_id(id)
        .include_deprecated(true)
        .send()
        .await
        .unwrap();
    let mut out = Vec::new();
    for v in list.versions() {
        if let Ok(g) = c
            .get_secret_value()
            .secret_id(id)
            .version_id(v.version_id().unwrap())
            .send()
            .await
        {
            out.push(g.secret_string().unwrap_or_default().to_owned());
        }
    }
    out
}
