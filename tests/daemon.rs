//! The daemon under a NOTIFY_SOCKET listener, against moto + ecs-sim: READY, rotations on a
//! short schedule, a rejected reload, SIGTERM mid-rollout, and a restart that finishes the
//! interrupted rotation without a second new version. Also: /metrics passes promtool.

mod common;

use common::*;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Daemon {
    child: Child,
}

impl Daemon {
    fn start(
        config: &std::path::Path,
        env: &[(String, String)],
        notify: Option<&std::path::Path>,
    ) -> Self {
        let mut cmd = Command::new(rotator_bin());
        cmd.args(["run", "--config", config.to_str().unwrap()])
            .env_remove("AWS_PROFILE")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(n) = notify {
            cmd.env("NOTIFY_SOCKET", n);
        }
        Self {
            child: cmd.spawn().expect("start daemon"),
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads notify messages until one contains `want`, returning everything read.
fn expect_notify(sock: &UnixDatagram, want: &str, timeout: Duration) -> Vec<String> {
    expect_notify_line(sock, want, |l| l == want, timeout)
}

/// Messages until one has a line that `hit` accepts (`what` names it in the failure).
fn expect_notify_line(
    sock: &UnixDatagram,
    what: &str,
    hit: impl Fn(&str) -> bool,
    timeout: Duration,
) -> Vec<String> {
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < timeout {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let hit = msg.lines().any(&hit);
            seen.push(msg);
            if hit {
                return seen;
            }
        }
    }
    panic!("no {what} within {timeout:?}; got {seen:?}");
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some(v) = f() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// [`wait_for`], printing the last state seen on timeout.
fn wait_for_or<T>(
    what: &str,
    timeout: Duration,
    last: &mut String,
    mut f: impl FnMut(&mut String) -> Option<T>,
) -> T {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some(v) = f(last) {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}; last seen:\n{last}");
}

/// promtool, or None when it is absent outside CI (in CI it must run).
fn promtool() -> Option<&'static str> {
    let found = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is required in CI (scripts/install-tools installs it)"
        );
        eprintln!("SKIPPED promtool checks: promtool not on PATH (run scripts/install-tools)");
        return None;
    }
    Some("promtool")
}

/// `promtool check metrics` accepts the exposition (lint included).
fn promtool_check_metrics(body: &str) {
    let Some(bin) = promtool() else { return };
    let mut p = Command::new(bin)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(p.stdin.as_mut().unwrap(), body.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The samples of a scraped exposition as promtool `input_series`, each holding its value
/// for 30 minutes, scraped as job "secret-rotator", instance "x".
fn as_input_series(body: &str) -> String {
    let mut out = String::new();
    for line in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let v: f64 = value.parse().expect("sample value");
        if !v.is_finite() {
            continue;
        }
        let target = "job=\"secret-rotator\",instance=\"x\"";
        let series = match series.strip_suffix('}') {
            Some(s) if s.ends_with('{') => format!("{s}{target}}}"),
            Some(s) => format!("{s},{target}}}"),
            None => format!("{series}{{{target}}}"),
        };
        out.push_str(&format!(
            "      - series: '{}'\n        values: '{v}x30'\n",
            series.replace('\'', "''")
        ));
    }
    out
}

/// Runs monitoring/alerts.yml on the scraped `body` (held for 30m) and asserts that at 15m
/// `alert` fires with exactly `exp_alerts` (promtool YAML, indented for the test case).
fn promtool_alert_fires(body: &str, alert: &str, exp_alerts: &str) {
    let Some(bin) = promtool() else { return };
    let dir = tempfile::tempdir().unwrap();
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/monitoring/alerts.yml");
    let test = format!(
        "rule_files:\n  - {rules}\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n{}    alert_rule_test:\n      - eval_time: 15m\n        alertname: {alert}\n        exp_alerts:\n{exp_alerts}",
        as_input_series(body)
    );
    let path = dir.path().join("scraped.test.yml");
    std::fs::write(&path, &test).unwrap();
    let out = Command::new(bin)
        .args(["test", "rules"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool test rules ({alert} on the scraped metrics): {}{}\n{test}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_lifecycle_under_systemd_notify() {
    let moto = Moto::start();
    // front rolls out slowly (60 s at 10x = 6 s real) so SIGTERM can land mid-rollout.
    let seed = r#"{"clusters":[{"name":"prod","services":[
        {"name":"front","desiredCount":2,"startSecs":10,"drainSecs":5},
        {"name":"slow","desiredCount":1,"startSecs":60,"drainSecs":5}]}]}"#;
    let sim = EcsSim::start(&["--time-scale", "10"], seed);
    let c = sm_client(&moto.url).await;
    create_secret(&c, "app/fast", "initial", &[]).await;
    create_secret(
        &c,
        "app/slow",
        "initial",
        &[("secret-rotator:last-rotated", "2026-01-01T00:00:00Z")],
    )
    .await;

    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        r#"[daemon]
listen = "127.0.0.1:{port}"
shutdown_grace = "1s"
retry_initial = "2s"

[[secret]]
name = "fast"
secret_id = "app/fast"
every = "1m"
allow_short_interval = true
redeploy = [{{ cluster = "prod", services = ["front"] }}]

[[secret]]
name = "slow"
secret_id = "app/slow"
every = "30d"
redeploy = [{{ cluster = "prod", services = ["slow"] }}]
stable_timeout = "5m"
"#
    );
    std::fs::write(dir.path().join("a.toml"), &cfg).unwrap();
    let sock_dir = tempfile::tempdir().unwrap();
    let sock_path = sock_dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let env = aws_env(Some(&moto.url), Some(&sim.url));

    let mut d = Daemon::start(dir.path(), &env, Some(&sock_path));
    let msgs = expect_notify(&sock, "READY=1", Duration::from_secs(30));
    assert!(msgs.iter().any(|m| m.contains("STATUS=")), "{msgs:?}");
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    assert_eq!(
        http_get(&format!("http://127.0.0.1:{port}/readyz"))
            .unwrap()
            .0,
        200
    );
    assert_eq!(
        http_get(&format!("http://127.0.0.1:{port}/healthz"))
            .unwrap()
            .0,
        200
    );

    // "slow" is overdue: its rollout starts at once and takes ~6 s.
    wait_for("the slow rollout to start", Duration::from_secs(20), || {
        (sim.calls()["UpdateService"].as_u64().unwrap_or(0) >= 1).then_some(())
    });
    // The status line reaches systemd when it changes (the rollout ends within seconds),
    // not on a minute's timer (which also woke an idle daemon for nothing).
    while sock.recv(&mut [0u8; 4096]).is_ok() {}
    expect_notify_line(
        &sock,
        "a new STATUS",
        |l| l.starts_with("STATUS="),
        Duration::from_secs(20),
    );

    // A broken file: the reload is refused, the old config stays, the metric says so.
    std::fs::write(
        dir.path().join("b.toml"),
        "[[secret]]\nname = \"broken\"\nevery = \"30x\"\n",
    )
    .unwrap();
    d.signal("-HUP");
    let msgs = expect_notify(&sock, "READY=1", Duration::from_secs(10));
    assert!(
        msgs.iter()
            .any(|m| m.lines().any(|l| l == "RELOADING=1") && m.contains("MONOTONIC_USEC=")),
        "{msgs:?}"
    );
    let body = http_get(&metrics_url).unwrap().1;
    assert_eq!(
        metric(&body, "secret_rotator_config_last_reload_successful"),
        Some(0.0),
        "{body}"
    );
    assert_eq!(
        metric(&body, "secret_rotator_secrets_configured"),
        Some(2.0)
    );

    // promtool accepts the exposition.
    promtool_check_metrics(&body);

    // SIGTERM in the middle of the slow rollout: STOPPING, exit 0 within the grace period.
    let mid = stages(&c, "app/slow").await;
    assert!(
        mid.contains_key("AWSPREVIOUS"),
        "the slow secret should be past finish: {mid:?}"
    );
    d.signal("-TERM");
    expect_notify(&sock, "STOPPING=1", Duration::from_secs(10));
    assert_eq!(d.wait_exit(Duration::from_secs(15)), Some(0));
    let slow_current = stages(&c, "app/slow").await["AWSCURRENT"][0].clone();
    let tags = c
        .describe_secret()
        .secret_id("app/slow")
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags().iter().all(|t| {
            t.key() != Some("secret-rotator:deployed-version")
                || t.value() != Some(slow_current.as_str())
        }),
        "not marked deployed yet"
    );

    // Restart (the broken file removed): the interrupted rotation is finished as a redeploy.
    std::fs::remove_file(dir.path().join("b.toml")).unwrap();
    let mut d = Daemon::start(dir.path(), &env, Some(&sock_path));
    expect_notify(&sock, "READY=1", Duration::from_secs(30));
    wait_for(
        "the slow secret to be marked deployed",
        Duration::from_secs(60),
        || {
            let body = http_get(&metrics_url).ok()?.1;
            (metric(
                &body,
                "secret_rotator_rotations_total{outcome=\"success\",secret=\"slow\"}",
            )? >= 1.0)
                .then_some(())
        },
    );
    assert_eq!(
        stages(&c, "app/slow").await["AWSCURRENT"],
        vec![slow_current.clone()],
        "no second new value"
    );
    assert_eq!(version_count(&c, "app/slow").await, 2);
    let tags = c
        .describe_secret()
        .secret_id("app/slow")
        .send()
        .await
        .unwrap();
    assert!(tags
        .tags()
        .iter()
        .any(|t| t.key() == Some("secret-rotator:deployed-version")
            && t.value() == Some(slow_current.as_str())));

    d.signal("-TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(15)), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_rotates_on_a_short_schedule() {
    let moto = Moto::start();
    let sim = EcsSim::start(
        &["--time-scale", "20"],
        r#"{"clusters":[{"name":"prod","services":[{"name":"front","desiredCount":1}]}]}"#,
    );
    let c = sm_client(&moto.url).await;
    create_secret(
        &c,
        "app/key",
        "initial",
        &[("secret-rotator:last-rotated", "2026-01-01T00:00:00Z")],
    )
    .await;
    let port = free_port();
    let dir = config_dir(&format!(
        "[daemon]\nlisten = \"127.0.0.1:{port}\"\n[[secret]]\nname = \"key\"\nsecret_id = \"app/key\"\nevery = \"1m\"\nallow_short_interval = true\nredeploy = [{{ cluster = \"prod\", services = [\"front\"] }}]\n"
    ));
    let mut d = Daemon::start(dir.path(), &aws_env(Some(&moto.url), Some(&sim.url)), None);
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    // Overdue at start: rotated at once; then due one minute after that.
    let mut last_body = String::new();
    let body = wait_for_or(
        "the first rotation",
        Duration::from_secs(30),
        &mut last_body,
        |lb| {
            let body = http_get(&metrics_url).ok()?.1;
            *lb = body.clone();
            (metric(
                &body,
                "secret_rotator_rotations_total{outcome=\"success\",secret=\"key\"}",
            )? >= 1.0)
                .then_some(body)
        },
    );
    let last = metric(
        &body,
        "secret_rotator_last_success_timestamp_seconds{secret=\"key\"}",
    )
    .unwrap();
    let next = metric(
        &body,
        "secret_rotator_next_due_timestamp_seconds{secret=\"key\"}",
    )
    .unwrap();
    assert_eq!(next - last, 60.0, "{body}");
    assert_eq!(version_count(&c, "app/key").await, 2);
    assert_eq!(metric(&body, "secret_rotator_ecs_redeploys_total{cluster=\"prod\",outcome=\"stable\",secret=\"key\",service=\"front\"}"), Some(1.0));
    // The other outcomes exist from start, at 0, so increase() sees their first event.
    assert_eq!(metric(&body, "secret_rotator_ecs_redeploys_total{cluster=\"prod\",outcome=\"rolled_back\",secret=\"key\",service=\"front\"}"), Some(0.0), "{body}");
    assert_eq!(
        metric(
            &body,
            "secret_rotator_rotations_total{outcome=\"failed\",secret=\"key\"}"
        ),
        Some(0.0),
        "{body}"
    );
    assert_eq!(
        metric(&body, "secret_rotator_retries_exhausted{secret=\"key\"}"),
        Some(0.0),
        "{body}"
    );
    assert!(
        metric(
            &body,
            "secret_rotator_rotation_deadline_timestamp_seconds{secret=\"key\"}"
        )
        .is_some_and(|d| d > next),
        "{body}"
    );
    d.signal("-TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(15)), Some(0));
}

#[test]
fn daemon_refuses_a_bad_config_with_78() {
    let dir = config_dir("[daemon]\nlisten = \"nowhere\"\n");
    let out = rotator(
        &["run", "--config", dir.path().to_str().unwrap()],
        &aws_env(None, None),
    );
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("daemon.listen"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_secret_is_failing_in_metrics_from_start() {
    let moto = Moto::start();
    let c = sm_client(&moto.url).await;
    create_secret(
        &c,
        "app/present",
        "initial",
        &[("secret-rotator:last-rotated", "2026-01-01T00:00:00Z")],
    )
    .await;
    let port = free_port();
    // "typo" names a secret_id that does not exist.
    let dir = config_dir(&format!(
        "[daemon]\nlisten = \"127.0.0.1:{port}\"\n[[secret]]\nname = \"present\"\nsecret_id = \"app/present\"\nevery = \"3650d\"\n[[secret]]\nname = \"typo\"\nsecret_id = \"app/does-not-exist\"\nevery = \"30d\"\n"
    ));
    let mut d = Daemon::start(dir.path(), &aws_env(Some(&moto.url), None), None);
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    let body = wait_for(
        "the unreadable secret's series",
        Duration::from_secs(30),
        || {
            let body = http_get(&metrics_url).ok()?.1;
            // The series exists (at 0) while the secret is still being read.
            (metric(&body, "secret_rotator_rotation_failing{secret=\"typo\"}") == Some(1.0))
                .then_some(body)
        },
    );
    assert_eq!(
        metric(&body, "secret_rotator_rotation_failing{secret=\"typo\"}"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        metric(&body, "secret_rotator_secret_readable{secret=\"typo\"}"),
        Some(0.0),
        "{body}"
    );
    assert!(
        metric(
            &body,
            "secret_rotator_next_due_timestamp_seconds{secret=\"typo\"}"
        )
        .is_some(),
        "{body}"
    );
    assert_eq!(
        metric(
            &body,
            "secret_rotator_secret_status{secret=\"typo\",status=\"unreadable\"}"
        ),
        Some(1.0),
        "{body}"
    );
    // The info series names the store object, so the mistyped secret_id is visible.
    assert!(
        body.lines()
            .any(|l| l.starts_with("secret_rotator_secret_info{")
                && l.contains("secret=\"typo\"")
                && l.contains("secret_id=\"app/does-not-exist\"")
                && l.contains("store=\"aws-secretsmanager\"")
                && l.ends_with(" 1")),
        "{body}"
    );
    // Unknown times are absent, not 0.
    assert_eq!(
        metric(
            &body,
            "secret_rotator_last_success_timestamp_seconds{secret=\"typo\"}"
        ),
        None,
        "{body}"
    );
    // The shipped alert rules, fed this very exposition, raise SecretUnreadable for the
    // mistyped secret only.
    promtool_check_metrics(&body);
    promtool_alert_fires(
        &body,
        "SecretUnreadable",
        "          - exp_labels: {severity: ticket, job: secret-rotator, instance: x, secret: typo}\n            exp_annotations:\n              summary: \"Secret typo cannot be read\"\n              description: \"secret-rotator on x cannot read typo (wrong secret_id, deleted secret or missing permission; the reason is in the daemon log). It will not be rotated until it can be read.\"\n",
    );
    // The readable one is fine, and the daemon as a whole is ready.
    assert_eq!(
        metric(&body, "secret_rotator_secret_readable{secret=\"present\"}"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        http_get(&format!("http://127.0.0.1:{port}/readyz"))
            .unwrap()
            .0,
        200
    );
    d.signal("-TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(15)), Some(0));
}

const EVENT_SEED: &str = r#"{"clusters":[{"name":"prod","services":[
  {"name":"front","desiredCount":2,"startSecs":3,"drainSecs":2},
  {"name":"api","desiredCount":1,"startSecs":5,"drainSecs":1},
  {"name":"pdf","desiredCount":1,"behavior":"failing","startSecs":2}]}]}"#;

/// The daemon with `[events]`: ecs-sim publishes its deployment events to moto's SQS, the
/// daemon reads them. Each verdict comes within a second or two of the rollout's end
/// (the waiter's schedule would be up to 15 s late), a rollback is reported before the
/// rollback deployment has even completed, and besides the safety poll each service is
/// described about once.
#[tokio::test(flavor = "multi_thread")]
async fn with_events_verdicts_come_within_seconds() {
    let moto = Moto::start();
    let sqs = sqs_client(&moto.url);
    let queue = sqs
        .create_queue()
        .queue_name("rotator-events")
        .send()
        .await
        .expect("CreateQueue")
        .queue_url()
        .expect("queue URL")
        .to_owned();
    let sim = EcsSim::start(
        &[
            "--time-scale",
            "1",
            "--events-queue-url",
            &queue,
            "--events-endpoint-url",
            &moto.url,
        ],
        EVENT_SEED,
    );
    let c = sm_client(&moto.url).await;
    let old = [("secret-rotator:last-rotated", "2026-01-01T00:00:00Z")];
    create_secret(&c, "app/key", "initial-Value-1234", &old).await;
    create_secret(&c, "app/pdf", "initial-Value-1234", &old).await;
    let port = free_port();
    let dir = config_dir(&format!(
        "[daemon]\nlisten = \"127.0.0.1:{port}\"\n[events]\nqueue_url = \"{queue}\"\nregion = \"us-east-1\"\n\n[[secret]]\nname = \"key\"\nsecret_id = \"app/key\"\nevery = \"30d\"\nredeploy = [{{ cluster = \"prod\", services = [\"front\", \"api\"] }}]\nstable_timeout = \"2m\"\n\n[[secret]]\nname = \"pdf\"\nsecret_id = \"app/pdf\"\nevery = \"30d\"\nredeploy = [{{ cluster = \"prod\", services = [\"pdf\"] }}]\nstable_timeout = \"2m\"\n"
    ));
    let _d = Daemon::start(dir.path(), &aws_env(Some(&moto.url), Some(&sim.url)), None);
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    let mut last_body = String::new();
    let mut rolled_back_seen = None;
    let body = wait_for_or(
        "both verdicts",
        Duration::from_secs(90),
        &mut last_body,
        |lb| {
            let body = http_get(&metrics_url).ok()?.1;
            *lb = body.clone();
            if rolled_back_seen.is_none()
                && metric(&body, "secret_rotator_ecs_redeploys_total{cluster=\"prod\",outcome=\"rolled_back\",secret=\"pdf\",service=\"pdf\"}") == Some(1.0)
            {
                rolled_back_seen = Some(now());
            }
            (metric(
                &body,
                "secret_rotator_rotations_total{outcome=\"success\",secret=\"key\"}",
            )? >= 1.0
                && rolled_back_seen.is_some())
            .then_some(body)
        },
    );
    let completions = sim.completions();
    let done = completions.as_array().unwrap();
    let completed = |svc: &str| {
        done.iter()
            .find(|c| c["service"] == svc && c["kind"] == "completed")
            .map(|c| c["wallTime"].as_f64().unwrap())
            .unwrap_or_else(|| panic!("{svc} never completed: {completions}"))
    };
    let last = completed("front").max(completed("api"));
    let finished = metric(
        &body,
        "secret_rotator_last_success_timestamp_seconds{secret=\"key\"}",
    )
    .unwrap();
    let late = finished - last;
    assert!(
        late < 2.0,
        "key reported {late:.2}s after its last rollout completed"
    );
    assert_eq!(
        metric(&body, "secret_rotator_ecs_events_receiving"),
        Some(1.0),
        "{body}"
    );
    assert!(
        metric(&body, "secret_rotator_ecs_event_lateness_seconds_count").unwrap_or(0.0) >= 1.0,
        "{body}"
    );
    // The FAILED event is confirmed at once: before the rollback deployment that the
    // circuit breaker started has completed (seconds later), not at a poll boundary.
    let deadline = Instant::now() + Duration::from_secs(30);
    let rolled_back = loop {
        let done = sim.completions();
        if let Some(t) = done
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["service"] == "pdf" && c["kind"] == "rolled_back")
        {
            break t["wallTime"].as_f64().unwrap();
        }
        assert!(Instant::now() < deadline, "{done}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let seen = rolled_back_seen.unwrap();
    assert!(
        seen <= rolled_back + 1.0,
        "rollback seen {:.2}s after the rollback deployment completed",
        seen - rolled_back
    );
    let describes = sim.calls()["DescribeServices"].as_u64().unwrap();
    // Per rotation: the start's precheck, a confirmation per service, a retry or two.
    assert!(describes <= 8, "{describes} DescribeServices calls");
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}
