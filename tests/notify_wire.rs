//! `[[notify]]` sinks, end to end: the daemon against moto + ecs-sim, delivering to a
//! local receiver (webhook, Slack, change records) and to SNS in moto (read back through
//! an SQS subscription). Checks the documented body (docs/notifications.md), the HMAC
//! signature, retries of a sink that is down or answers 503, and that a slow sink never
//! delays a rotation.

mod common;

use common::receiver::{Receiver, Request};
use common::sns::{sns_messages, sns_topic_with_queue};
use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

const HOOK_KEY: &str = "hook-key-for-tests-0123456789";

fn daemon(dir: &std::path::Path, env: &[(String, String)]) -> (Bg, tempfile::NamedTempFile) {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new(rotator_bin());
    cmd.args(["run", "--config", dir.to_str().unwrap()])
        .env_remove("AWS_PROFILE")
        .env("RUST_LOG", "info")
        .env("HOOK_KEY", HOOK_KEY)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log.path()).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    (Bg(cmd.spawn().expect("start daemon")), log)
}

/// moto, ecs-sim (20x) with the clusters of `seed`, and a Secrets Manager client.
async fn doubles(seed: &str) -> (Moto, EcsSim, aws_sdk_secretsmanager::Client) {
    let moto = Moto::start();
    let sim = EcsSim::start(&["--time-scale", "20"], seed);
    let c = sm_client(&moto.url).await;
    (moto, sim, c)
}

fn overdue() -> [(&'static str, &'static str); 1] {
    [("secret-rotator:last-rotated", "2026-01-01T00:00:00Z")]
}

/// Checks `v` against the documented `secret-rotator.event/v1` schema.
fn check_event_schema(v: &Value) {
    let o = v.as_object().expect("an object");
    let keys: Vec<&str> = o.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "schema",
            "id",
            "kind",
            "at",
            "secret",
            "group",
            "attempt",
            "outcome",
            "step",
            "error",
            "consumers",
            "version",
            "action"
        ],
        "{v}"
    );
    assert_eq!(v["schema"], "secret-rotator.event/v1");
    assert_eq!(v["id"].as_str().expect("id").len(), 36, "{v}");
    assert!(
        ["started", "succeeded", "failed", "group_halted", "overdue"]
            .contains(&v["kind"].as_str().expect("kind")),
        "{v}"
    );
    chrono::DateTime::parse_from_rfc3339(v["at"].as_str().expect("at")).expect("RFC 3339 at");
    assert!(
        v["secret"]["name"].is_string() && v["secret"]["id"].is_string(),
        "{v}"
    );
    assert!(
        v["group"].is_null() || v["group"]["name"].is_string(),
        "{v}"
    );
    assert!(v["attempt"].as_u64().expect("attempt") >= 1);
    for k in ["outcome", "step", "error", "version", "action"] {
        assert!(v[k].is_null() || v[k].is_string(), "{k}: {v}");
    }
    for c in v["consumers"].as_array().expect("consumers") {
        assert!(
            c["consumer"].is_string() && c["verdict"].is_string() && c["detail"].is_string(),
            "{v}"
        );
        assert!(c["events"]
            .as_array()
            .expect("events")
            .iter()
            .all(Value::is_string));
    }
}

/// Verifies the request's signature the way docs/notifications.md tells a receiver to.
fn verify_signature(r: &Request, key: &str) {
    use hmac::{KeyInit, Mac};
    let ts = r
        .header("x-secret-rotator-timestamp")
        .expect("timestamp header");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let t: i64 = ts.parse().expect("unix seconds");
    assert!((now - t).abs() < 300, "an old timestamp");
    let mut mac =
        <hmac::Hmac<sha2_v011::Sha256> as KeyInit>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(&r.body);
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        r.header("x-secret-rotator-signature"),
        Some(format!("sha256={want}").as_str())
    );
}

/// The scrape once `series` reads `want` (the receiver records a request before it
/// answers, so the daemon counts it a moment later), or after 10 s whatever it is.
async fn metrics_when(port: u16, series: &str, want: f64) -> String {
    let start = Instant::now();
    loop {
        let body = http_get(&format!("http://127.0.0.1:{port}/metrics"))
            .unwrap()
            .1;
        if metric(&body, series) == Some(want) || start.elapsed() > Duration::from_secs(10) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn kinds(reqs: &[Request]) -> Vec<String> {
    reqs.iter()
        .map(|r| r.json()["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_gets_signed_started_then_succeeded() {
    let (moto, sim, c) =
        doubles(r#"{"clusters":[{"name":"prod","services":[{"name":"front","desiredCount":1}]}]}"#)
            .await;
    create_secret(&c, "app/key", "initial", &overdue()).await;
    let rx = Receiver::start(0);
    let port = free_port();
    let dir = config_dir(&format!(
        r#"[daemon]
listen = "127.0.0.1:{port}"
[[secret]]
name = "key"
secret_id = "app/key"
every = "30d"
redeploy = [{{ cluster = "prod", services = ["front"] }}]
[[notify]]
name = "hook"
kind = "webhook"
url = "{}"
secret_env = "HOOK_KEY"
headers = {{ Authorization = "Bearer abc" }}
"#,
        rx.url("/hook")
    ));
    let (_d, log) = daemon(dir.path(), &aws_env(Some(&moto.url), Some(&sim.url)));
    let got = rx.wait_for("started and succeeded", Duration::from_secs(60), |r| {
        kinds(r).contains(&"succeeded".to_owned())
    });
    // Due since January: overdue first (every kind is delivered without `events`).
    assert_eq!(
        kinds(&got),
        ["overdue", "started", "succeeded"],
        "{}",
        std::fs::read_to_string(log.path()).unwrap()
    );
    for r in &got {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/hook");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r
            .header("user-agent")
            .unwrap()
            .starts_with("secret-rotator/"));
        assert_eq!(r.header("authorization"), Some("Bearer abc"));
        let v = r.json();
        check_event_schema(&v);
        assert_eq!(r.header("x-secret-rotator-event"), v["kind"].as_str());
        assert_eq!(r.header("x-secret-rotator-delivery"), v["id"].as_str());
        assert_eq!(v["secret"]["name"], "key");
        assert_eq!(v["secret"]["id"], "app/key");
        verify_signature(r, HOOK_KEY);
    }
    let done = got[2].json();
    assert_eq!(done["outcome"], "success");
    assert_eq!(
        done["version"].as_str(),
        stages(&c, "app/key").await["AWSCURRENT"]
            .first()
            .map(String::as_str)
    );
    let body = metrics_when(
        port,
        "secret_rotator_notifications_total{kind=\"webhook\",result=\"delivered\",sink=\"hook\"}",
        3.0,
    )
    .await;
    assert_eq!(
        metric(&body, "secret_rotator_notifications_total{kind=\"webhook\",result=\"delivered\",sink=\"hook\"}"),
        Some(3.0),
        "{body}"
    );
    assert!(
        metric(
            &body,
            "secret_rotator_notification_last_success_timestamp_seconds{sink=\"hook\"}"
        )
        .unwrap_or(0.0)
            > 1e9
    );
    // The key never appears in the log.
    assert!(!std::fs::read_to_string(log.path())
        .unwrap()
        .contains(HOOK_KEY));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolled_back_consumer_is_named_in_the_failed_event_and_on_slack() {
    let (moto, sim, c) = doubles(r#"{"clusters":[{"name":"prod","services":[{"name":"pdf","desiredCount":1,"behavior":"failing"}]}]}"#).await;
    create_secret(&c, "app/pdf", "initial", &overdue()).await;
    let hook = Receiver::start(0);
    let slack = Receiver::start(0);
    let port = free_port();
    let dir = config_dir(&format!(
        r#"[daemon]
listen = "127.0.0.1:{port}"
retry_initial = "1h"
[[secret]]
name = "pdf"
secret_id = "app/pdf"
every = "30d"
redeploy = [{{ cluster = "prod", services = ["pdf"] }}]
[[notify]]
name = "hook"
kind = "webhook"
url = "{}"
events = ["failed"]
[[notify]]
name = "chat"
kind = "slack"
url = "{}"
events = ["failed", "succeeded"]
"#,
        hook.url("/hook"),
        slack.url("/services/T0/B0/xyz")
    ));
    let (_d, log) = daemon(dir.path(), &aws_env(Some(&moto.url), Some(&sim.url)));
    let got = hook.wait_for("the failed event", Duration::from_secs(90), |r| {
        !r.is_empty()
    });
    let v = got[0].json();
    check_event_schema(&v);
    assert_eq!(
        v["kind"],
        "failed",
        "{}",
        std::fs::read_to_string(log.path()).unwrap()
    );
    assert_eq!(v["outcome"], "rolled_back", "{v}");
    assert_eq!(v["step"], "wait", "{v}");
    assert!(got[0].header("x-secret-rotator-signature").is_none());
    let pdf = &v["consumers"][0];
    assert_eq!(pdf["consumer"], "prod/pdf", "{v}");
    assert_eq!(pdf["verdict"], "rolled_back", "{v}");
    let events = pdf["events"].as_array().unwrap();
    assert!(!events.is_empty(), "the ECS events that explain it: {v}");
    assert!(
        events.iter().any(|e| e
            .as_str()
            .unwrap()
            .contains("(service pdf) (deployment ecs-svc/")
            && e.as_str().unwrap().contains("deployment failed")),
        "{v}"
    );

    let msgs = slack.wait_for("the Slack message", Duration::from_secs(30), |r| {
        !r.is_empty()
    });
    let m = msgs[0].json();
    assert_eq!(m.as_object().unwrap().len(), 1, "only `text`: {m}");
    let text = m["text"].as_str().unwrap();
    assert!(text.contains("FAILED: secret pdf"), "{text}");
    assert!(text.contains("rolled_back"), "{text}");
    assert!(text.contains("prod/pdf (rolled_back)"), "{text}");
    assert!(text.contains("ECS: "), "{text}");
    // The webhook URL's path (a Slack credential) is never logged.
    assert!(!std::fs::read_to_string(log.path())
        .unwrap()
        .contains("/services/T0/B0/xyz"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sink_answering_503_is_retried_and_never_delays_the_rotation() {
    let (moto, sim, c) =
        doubles(r#"{"clusters":[{"name":"prod","services":[{"name":"front","desiredCount":1}]}]}"#)
            .await;
    create_secret(&c, "app/key", "initial", &overdue()).await;
    // 503 twice, then 200; 20 s before the first retry (10 to 20 s with jitter), 40 s
    // before the second: the third attempt, which delivers, comes long after the
    // rotation (about 15 s here) would have ended had it not waited on the sink.
    let rx = Receiver::start(2);
    let port = free_port();
    let dir = config_dir(&format!(
        r#"[daemon]
listen = "127.0.0.1:{port}"
[[secret]]
name = "key"
secret_id = "app/key"
every = "30d"
redeploy = [{{ cluster = "prod", services = ["front"] }}]
[[notify]]
name = "hook"
kind = "webhook"
url = "{}"
events = ["started", "succeeded"]
retry_initial = "20s"
"#,
        rx.url("/hook")
    ));
    let t0 = Instant::now();
    let (_d, log) = daemon(dir.path(), &aws_env(Some(&moto.url), Some(&sim.url)));
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    let rotated_at = loop {
        let body = http_get(&metrics_url).map(|r| r.1).unwrap_or_default();
        if metric(
            &body,
            "secret_rotator_rotations_total{outcome=\"success\",secret=\"key\"}",
        ) >= Some(1.0)
        {
            break Instant::now();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no rotation: {}",
            std::fs::read_to_string(log.path()).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let got = rx.wait_for("both events delivered", Duration::from_secs(120), |r| {
        r.len() >= 2
    });
    assert_eq!(kinds(&got), ["started", "succeeded"]);
    let all = rx.requests();
    let statuses: Vec<u16> = all.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 200, 200]);
    // The third attempt of the started event delivered it, with the same delivery id.
    assert_eq!(
        all[0].header("x-secret-rotator-delivery"),
        all[2].header("x-secret-rotator-delivery")
    );
    assert_eq!(
        all[1].header("x-secret-rotator-delivery"),
        all[2].header("x-secret-rotator-delivery")
    );
    // The rotation ended before the sink accepted anything.
    assert!(rotated_at < all[2].instant);
    let ended: chrono::DateTime<chrono::Utc> =
        got[1].json()["at"].as_str().unwrap().parse().unwrap();
    assert!(SystemTime::from(ended) < all[2].at);
    // The receiver records a request before it answers: the count follows shortly.
    let start = Instant::now();
    let body = loop {
        let body = http_get(&metrics_url).unwrap().1;
        if metric(&body, "secret_rotator_notifications_total{kind=\"webhook\",result=\"delivered\",sink=\"hook\"}") == Some(2.0)
            || start.elapsed() > Duration::from_secs(10)
        {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        metric(
            &body,
            "secret_rotator_notification_retries_total{sink=\"hook\"}"
        ),
        Some(2.0),
        "{body}"
    );
    assert_eq!(
        metric(&body, "secret_rotator_notifications_total{kind=\"webhook\",result=\"delivered\",sink=\"hook\"}"),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &body,
            "secret_rotator_notifications_total{kind=\"webhook\",result=\"failed\",sink=\"hook\"}"
        ),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sns_publishes_the_event_with_subject_and_attributes() {
    let (moto, sim, c) =
        doubles(r#"{"clusters":[{"name":"prod","services":[{"name":"front","desiredCount":1}]}]}"#)
            .await;
    create_secret(&c, "app/key", "initial", &overdue()).await;
    let (arn, queue) = sns_topic_with_queue(&moto.url, "rotations").await;
    let port = free_port();
    let dir = config_dir(&format!(
        r#"[daemon]
listen = "127.0.0.1:{port}"
[[secret]]
name = "key"
secret_id = "app/key"
every = "30d"
redeploy = [{{ cluster = "prod", services = ["front"] }}]
[[notify]]
name = "topic"
kind = "sns"
topic_arn = "{arn}"
events = ["started", "succeeded"]
endpoint = "{}"
"#,
        moto.url
    ));
    let (_d, log) = daemon(dir.path(), &aws_env(Some(&moto.url), Some(&sim.url)));
    let msgs = sns_messages(&moto.url, &queue, 2).await;
    let mut seen = Vec::new();
    for env in &msgs {
        assert_eq!(env["Type"], "Notification", "{env}");
        assert_eq!(env["TopicArn"], arn.as_str());
        let v: Value = serde_json::from_str(env["Message"].as_str().unwrap()).unwrap();
        check_event_schema(&v);
        let kind = v["kind"].as_str().unwrap().to_owned();
        assert_eq!(
            env["Subject"],
            format!("secret-rotator: {kind} key"),
            "{env}"
        );
        assert_eq!(
            env["MessageAttributes"]["kind"]["Value"],
            kind.as_str(),
            "{env}"
        );
        assert_eq!(env["MessageAttributes"]["secret"]["Value"], "key", "{env}");
        seen.push(kind);
    }
    assert_eq!(
        seen,
        ["started", "succeeded"],
        "{}",
        std::fs::read_to_string(log.path()).unwrap()
    );
    let body = metrics_when(
        port,
        "secret_rotator_notifications_total{kind=\"sns\",result=\"delivered\",sink=\"topic\"}",
        2.0,
    )
    .await;
    assert_eq!(
        metric(
            &body,
            "secret_rotator_notifications_total{kind=\"sns\",result=\"delivered\",sink=\"topic\"}"
        ),
        Some(2.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn change_records_open_and_close_for_the_listed_secret_only() {
    let (moto, sim, c) = doubles(r#"{"clusters":[{"name":"prod","services":[{"name":"front","desiredCount":1},{"name":"api","desiredCount":1}]}]}"#).await;
    create_secret(&c, "app/prod", "initial", &overdue()).await;
    create_secret(&c, "app/dev", "initial", &overdue()).await;
    let rx = Receiver::start(0);
    let port = free_port();
    let dir = config_dir(&format!(
        r#"[daemon]
listen = "127.0.0.1:{port}"
[[secret]]
name = "api-db-prod"
secret_id = "app/prod"
every = "30d"
redeploy = [{{ cluster = "prod", services = ["api"] }}]
[[secret]]
name = "api-db-dev"
secret_id = "app/dev"
every = "30d"
redeploy = [{{ cluster = "prod", services = ["front"] }}]
[[notify]]
name = "itsm"
kind = "change-record"
open_url = "{}"
close_url = "{}"
secret_env = "HOOK_KEY"
secrets = ["api-db-prod"]
"#,
        rx.url("/change/open"),
        rx.url("/change/close")
    ));
    let (_d, log) = daemon(dir.path(), &aws_env(Some(&moto.url), Some(&sim.url)));
    let got = rx.wait_for("open and close", Duration::from_secs(60), |r| r.len() >= 2);
    // Both secrets rotated; only the listed one has records.
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    let start = Instant::now();
    loop {
        let body = http_get(&metrics_url).unwrap().1;
        if metric_sum(&body, "secret_rotator_rotations_total{outcome=\"success\"") >= 2.0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{}",
            std::fs::read_to_string(log.path()).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = if rx.requests().len() > got.len() {
        rx.requests()
    } else {
        got
    };
    assert_eq!(
        got.len(),
        2,
        "{:?}",
        got.iter().map(|r| r.text()).collect::<Vec<_>>()
    );
    let (open, close) = (&got[0], &got[1]);
    assert_eq!(open.path, "/change/open");
    assert_eq!(close.path, "/change/close");
    verify_signature(open, HOOK_KEY);
    verify_signature(close, HOOK_KEY);
    let (o, c) = (open.json(), close.json());
    assert_eq!(o["schema"], "secret-rotator.change/v1");
    assert_eq!(o["action"], "open");
    assert_eq!(c["action"], "close");
    assert_eq!(o["secret"]["name"], "api-db-prod");
    assert_eq!(o["change_key"], c["change_key"]);
    assert!(o["change_key"]
        .as_str()
        .unwrap()
        .starts_with("api-db-prod:"));
    assert_eq!(c["paired"], true);
    assert_eq!(c["outcome"], "success");
    check_event_schema(&o["event"]);
    check_event_schema(&c["event"]);
    assert_eq!(c["event"]["kind"], "succeeded");
}

#[test]
fn a_missing_hmac_key_variable_stops_the_start_naming_it() {
    let port = free_port();
    let dir = config_dir(&format!(
        r#"[daemon]
listen = "127.0.0.1:{port}"
[[secret]]
name = "key"
secret_id = "app/key"
every = "30d"
[[notify]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:9/hook"
secret_env = "NOTIFY_TEST_MISSING_KEY"
"#
    ));
    let mut cmd = Command::new(rotator_bin());
    cmd.args(["run", "--config", dir.path().to_str().unwrap()])
        .env_remove("AWS_PROFILE")
        .env_remove("NOTIFY_TEST_MISSING_KEY");
    for (k, v) in aws_env(None, None) {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("notify[hook].secret_env: the environment variable NOTIFY_TEST_MISSING_KEY is not set or empty"),
        "{stderr}"
    );
}
