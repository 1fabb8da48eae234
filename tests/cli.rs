//! The command line as an operator meets it: help, exit codes, one-line errors when AWS
//! cannot be reached, JSON-only output with `--log-format json`, the wait heartbeat.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::process::{Command, Output};

const VALID: &str =
    "[[secret]]\nname = \"api-key\"\nsecret_id = \"prod/api/key\"\nevery = \"30d\"\n";

/// Runs the binary with nothing from this machine's environment: no AWS variables, an
/// empty HOME (no ~/.aws), IMDS disabled.
fn bare(args: &[&str], home: &std::path::Path, extra: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(rotator_bin());
    cmd.args(args)
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "us-east-1")
        .env("NO_COLOR", "1");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.output().expect("run secret-rotator")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A TCP port on which nothing listens.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}

#[test]
fn help_lists_exit_codes_examples_and_the_daemon_endpoints() {
    let home = tempfile::tempdir().unwrap();
    let top = text(&bare(&["--help"], home.path(), &[]).stdout);
    for code in ["0 ", "1 ", "64", "69", "78"] {
        assert!(
            top.contains(&format!("  {code}")),
            "exit code {code} missing in --help:\n{top}"
        );
    }
    assert!(top.contains("--config <DIR>"), "{top}");
    for sub in ["check", "plan", "rotate", "run", "group"] {
        let help = text(&bare(&[sub, "--help"], home.path(), &[]).stdout);
        assert!(help.contains("Examples:"), "{sub} --help:\n{help}");
        assert!(help.contains("Exit codes"), "{sub} --help:\n{help}");
    }
    let run = text(&bare(&["run", "--help"], home.path(), &[]).stdout);
    for word in [
        "/metrics", "/healthz", "/readyz", "SIGHUP", "SIGTERM", "RUST_LOG",
    ] {
        assert!(run.contains(word), "run --help lacks {word}:\n{run}");
    }
}

#[test]
fn no_credentials_is_one_line_and_exit_69_for_every_aws_command() {
    let home = tempfile::tempdir().unwrap();
    let dir = config_dir(VALID);
    let d = dir.path().to_str().unwrap();
    for args in [
        vec!["plan", "--config", d],
        vec!["rotate", "api-key", "--config", d],
        vec!["rotate", "api-key", "--dry-run", "--config", d],
        vec!["check", "--remote", "--config", d],
    ] {
        let out = bare(&args, home.path(), &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(69), "{args:?}: {stderr}");
        assert_eq!(
            stderr, "error: no AWS credentials found (tried: env, profile, SSO, IMDS)\n",
            "{args:?}"
        );
    }
}

#[test]
fn an_unreachable_endpoint_exits_69_for_every_aws_command() {
    let home = tempfile::tempdir().unwrap();
    let dir = config_dir(VALID);
    let d = dir.path().to_str().unwrap();
    let url = format!("http://127.0.0.1:{}", closed_port());
    let env = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_ENDPOINT_URL", url.as_str()),
    ];
    for args in [
        vec!["plan", "--config", d],
        vec!["rotate", "api-key", "--config", d],
        vec!["check", "--remote", "--config", d],
    ] {
        let out = bare(&args, home.path(), &env);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(69), "{args:?}: {stderr}");
        assert!(stderr.contains("DispatchFailure"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// Every exit code the README documents is produced by some run here.
#[tokio::test(flavor = "multi_thread")]
async fn every_documented_exit_code_is_produced() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = readme
        .split("Exit codes:")
        .nth(1)
        .expect("README has an `Exit codes:` sentence");
    let section = &section[..section.find("\n\n").unwrap_or(section.len())];
    let documented: BTreeSet<i32> = section
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(
        documented,
        BTreeSet::from([0, 1, 64, 69, 78]),
        "README: {section}"
    );

    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    create_secret(&c, "prod/api/key", "initial", &[]).await;
    let home = tempfile::tempdir().unwrap();
    let good = config_dir(VALID);
    let ghost =
        config_dir("[[secret]]\nname = \"ghost\"\nsecret_id = \"prod/ghost\"\nevery = \"30d\"\n");
    let bad = config_dir("[[secret]]\nname = \"x\"\nevery = \"1m\"\n");
    let moto_env = aws_env(Some(&moto.url), None);
    let at = |d: &ConfigDir| d.path().to_str().unwrap().to_owned();

    let mut produced = BTreeSet::new();
    let mut record = |what: &str, out: Output, expected: i32| {
        assert_eq!(
            out.status.code(),
            Some(expected),
            "{what}: {}",
            text(&out.stderr)
        );
        produced.insert(expected);
    };
    record(
        "check --remote of a readable secret",
        rotator(&["check", "--remote", "--config", &at(&good)], &moto_env),
        0,
    );
    record(
        "check --remote of a missing secret",
        rotator(&["check", "--remote", "--config", &at(&ghost)], &moto_env),
        1,
    );
    record(
        "rotate of an unknown name",
        rotator(&["rotate", "nope", "--config", &at(&good)], &moto_env),
        64,
    );
    record(
        "plan without credentials",
        bare(&["plan", "--config", &at(&good)], home.path(), &[]),
        69,
    );
    record(
        "check of an invalid configuration",
        rotator(&["check", "--config", &at(&bad)], &moto_env),
        78,
    );
    assert_eq!(produced, documented);
}

#[test]
fn an_unknown_secret_name_suggests_the_closest() {
    let home = tempfile::tempdir().unwrap();
    let dir = config_dir(VALID);
    let out = bare(
        &[
            "rotate",
            "api-kye",
            "--config",
            dir.path().to_str().unwrap(),
        ],
        home.path(),
        &[],
    );
    assert_eq!(out.status.code(), Some(64));
    assert_eq!(
        text(&out.stderr),
        "error: no secret named \"api-kye\" in the configuration; did you mean \"api-key\"?\n"
    );
}

#[test]
fn check_says_what_every_means_in_days() {
    let home = tempfile::tempdir().unwrap();
    let dir = config_dir(
        "[[secret]]\nname = \"a\"\nsecret_id = \"x\"\nevery = \"720h\"\n\n[[secret]]\nname = \"b\"\nsecret_id = \"y\"\nevery = \"10m\"\nallow_short_interval = true\n",
    );
    let out = bare(
        &["check", "--config", dir.path().to_str().unwrap()],
        home.path(),
        &[],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("  a: every 30d (30 days)"), "{stdout}");
    assert!(stdout.contains("  b: every 10m (10 minutes)"), "{stdout}");
}

/// `check` names each group's order and each sink, and fails (78, like the daemon's start)
/// when a sink's HMAC key variable is not set.
#[test]
fn check_shows_groups_and_sinks_and_a_missing_hmac_key() {
    let home = tempfile::tempdir().unwrap();
    let dir = config_dir(
        "[[secret]]\nname = \"dev\"\nsecret_id = \"x\"\nevery = \"30d\"\n\n[[secret]]\nname = \"prod\"\nsecret_id = \"y\"\nevery = \"30d\"\n\n[[group]]\nname = \"db\"\nsecrets = [\"dev\", \"prod\"]\nsoak = \"1d\"\n\n[[notify]]\nname = \"oncall\"\nkind = \"webhook\"\nurl = \"https://hooks.example.com/x\"\nsecret_env = \"CHECK_TEST_HOOK_KEY\"\nevents = [\"failed\"]\n",
    );
    let d = dir.path().to_str().unwrap();
    let out = bare(
        &["check", "--config", d],
        home.path(),
        &[("CHECK_TEST_HOOK_KEY", "k")],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        stdout.contains("group db: dev -> prod in this order, soak 1d"),
        "{stdout}"
    );
    assert!(
        stdout.contains("notify oncall (webhook): failed"),
        "{stdout}"
    );
    let out = bare(&["check", "--config", d], home.path(), &[]);
    assert_eq!(out.status.code(), Some(78));
    assert!(
        text(&out.stderr).contains("CHECK_TEST_HOOK_KEY"),
        "{}",
        text(&out.stderr)
    );
}

const SLOW_SEED: &str = r#"{"clusters":[{"name":"prod","services":[
  {"name":"front","desiredCount":2,"startSecs":17,"drainSecs":1},
  {"name":"api","desiredCount":1,"startSecs":2,"drainSecs":1}]}]}"#;

const SLOW_CONFIG: &str = "[[secret]]\nname = \"api-key\"\nsecret_id = \"prod/api/key\"\nevery = \"30d\"\nredeploy = [{ cluster = \"prod\", services = [\"front\", \"api\"] }]\nstable_timeout = \"2m\"\n";

/// A rollout longer than the heartbeat: the wait prints counts per service at least every
/// 15 s; with JSON logs, every stderr line is a JSON object (the heartbeat included) and
/// stdout is the JSON result.
#[tokio::test(flavor = "multi_thread")]
async fn a_long_wait_has_a_heartbeat_and_json_logs_are_json_only() {
    let moto = Moto::start();
    let sim = EcsSim::start(&["--time-scale", "1"], SLOW_SEED);
    let c = sm_client(&moto.url).await;
    create_secret(&c, "prod/api/key", "initial", &[]).await;
    let dir = config_dir(SLOW_CONFIG);
    let env = aws_env(Some(&moto.url), Some(&sim.url));

    let out = rotator(
        &[
            "rotate",
            "api-key",
            "--config",
            dir.path().to_str().unwrap(),
        ],
        &env,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // The first heartbeat may come before the first poll (15 s after the force) and say
    // that no service reported yet; a later one counts front's tasks.
    let beats: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("    ... waiting "))
        .collect();
    assert!(!beats.is_empty(), "no heartbeat:\n{stderr}");
    assert!(beats.iter().any(|b| b.contains("prod/front ")), "{beats:?}");

    let out = rotator(
        &[
            "--log-format",
            "json",
            "rotate",
            "api-key",
            "--config",
            dir.path().to_str().unwrap(),
        ],
        &env,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let mut beats = 0;
    for line in stderr.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{stderr}"));
        assert_eq!(v["secret"], "api-key", "{line}");
        if v["waited_seconds"].is_u64() {
            beats += 1;
        }
        if v["service"].is_string() {
            assert_eq!(v["cluster"], "prod", "cluster and service apart: {line}");
            assert!(!v["service"].as_str().unwrap().contains('/'), "{line}");
        }
    }
    assert!(beats >= 1, "no JSON heartbeat:\n{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", text(&out.stdout)));
    assert_eq!(report["outcome"], "success");
}
