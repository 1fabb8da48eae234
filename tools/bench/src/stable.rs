//! Scenario 1: how soon after a rollout really completes each side reports it, on five
//! rollout shapes, and how many DescribeServices calls it makes. Three sides in the same
//! run, from the same moments: the deploy coordinator polling, the coordinator fed by ECS
//! deployment events (ecs-sim publishing to moto's SQS), and `aws ecs wait
//! services-stable` (one process per service, forced just before it starts). Each side
//! and shape has its own ecs-sim (same seed, real time), so every call counter is its own.

use crate::servers::{ecs_client, ecs_sim, http_get_json, moto, set_aws_env, venv_bin, Proc};
use secret_rotator::aws::events::SqsEvents;
use secret_rotator::aws::AwsContext;
use secret_rotator::ids::{Account, ClusterName, ServiceName, ServiceRef};
use secret_rotator::rotation::coordinator::{listen, Coordinator};
use secret_rotator::rotation::wait::{ServiceVerdict, DEFAULT_SAFETY_POLL};
use secret_rotator::rotation::Quiet;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncReadExt;

/// Rollouts per shape.
pub const PER_SHAPE: usize = 8;
/// Gap between two rollouts' forces: spreads the CLI waiters' start-up (a Python process
/// each) so that it does not delay their first call on 2 shared cores.
const STAGGER: Duration = Duration::from_millis(750);
/// Timeout of every rollout but the stalled ones (the waiter's own limit).
const TIMEOUT_SECS: u64 = 600;

pub const MODES: [&str; 3] = ["polling", "events", "waiter"];

pub struct Shape {
    pub key: &'static str,
    /// What the verdict should be (the waiter's is reported as it is).
    pub expect: &'static str,
}

pub const SHAPES: [Shape; 5] = [
    Shape {
        key: "batch",
        expect: "stable",
    },
    Shape {
        key: "gradual",
        expect: "stable",
    },
    Shape {
        key: "deregistration",
        expect: "stable",
    },
    Shape {
        key: "rollback",
        expect: "rolled_back",
    },
    Shape {
        key: "stall",
        expect: "stalled",
    },
];

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// ecs-sim seed fields of rollout `i` of a shape (durations varied, deterministic), and
/// its timeout.
fn service(shape: &str, i: usize) -> (String, u64) {
    let fields = match shape {
        // New tasks all start, then old ones drain: 15 to 88 s.
        "batch" => format!(
            r#""desiredCount":2,"startSecs":{},"drainSecs":{}"#,
            10 + (i * 13) % 50,
            5 + (i * 11) % 25
        ),
        // One task at a time, 2 or 3 tasks: 32 to 114 s.
        "gradual" => format!(
            r#""desiredCount":{},"gradual":true,"startSecs":{},"drainSecs":{}"#,
            2 + i % 2,
            5 + (i * 7) % 20,
            3 + (i * 5) % 12
        ),
        // Old tasks stay RUNNING 60 to 240 s after the new ones are up.
        "deregistration" => format!(
            r#""desiredCount":2,"startSecs":{},"deregistrationSecs":{},"drainSecs":5"#,
            10 + (i * 7) % 30,
            60 + (i * 29) % 180
        ),
        // The breaker trips after 3 failures, the rollback (gradual for odd i) completes.
        "rollback" => format!(
            r#""desiredCount":2,"behavior":"failing","gradual":{},"startSecs":{},"drainSecs":5"#,
            i % 2 == 1,
            4 + (i * 5) % 16
        ),
        _ => r#""desiredCount":2,"behavior":"stall""#.to_owned(),
    };
    let timeout = if shape == "stall" {
        60 + 20 * i as u64
    } else {
        TIMEOUT_SECS
    };
    (fields, timeout)
}

/// Each rollout is the only service of its own cluster: no DescribeServices call is
/// shared between rollouts, so the counts compare pacing, not batching.
fn cluster(shape: &str, i: usize) -> String {
    format!("{shape}-{i}")
}

fn seed(shape: &str) -> String {
    let clusters: Vec<String> = (0..PER_SHAPE)
        .map(|i| {
            let (fields, _) = service(shape, i);
            format!(
                r#"{{"name":"{}","services":[{{"name":"app",{fields}}}]}}"#,
                cluster(shape, i)
            )
        })
        .collect();
    format!(r#"{{"clusters":[{}]}}"#, clusters.join(","))
}

fn describe_calls(url: &str) -> u64 {
    http_get_json(&format!("{url}/_sim/calls"))["DescribeServices"]
        .as_u64()
        .unwrap_or(0)
}

/// (kind, wallTime) of every end state of `cluster`'s rollout, in order.
fn completions(url: &str, cluster: &str) -> Vec<(String, f64)> {
    http_get_json(&format!("{url}/_sim/completions"))
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|c| c["cluster"] == cluster)
                .map(|c| {
                    (
                        c["kind"].as_str().unwrap_or_default().to_owned(),
                        c["wallTime"].as_f64().unwrap_or(f64::NAN),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What one side saw of one rollout.
#[derive(Clone)]
struct Seen {
    forced: f64,
    verdict: String,
    at: f64,
    /// The waiter's DescribeServices calls and the lag of its first one after the force
    /// (from its `--debug` log).
    calls: Option<u64>,
    first_call_lag: Option<f64>,
}

fn verdict_text(v: Option<&ServiceVerdict>) -> String {
    v.map_or("none", ServiceVerdict::label).to_owned()
}

async fn ours(
    coordinator: Coordinator<secret_rotator::aws::ecs::AwsEcs>,
    cluster: String,
    timeout: u64,
    start: tokio::time::Instant,
) -> Seen {
    tokio::time::sleep_until(start).await;
    let svc = ServiceRef {
        cluster: ClusterName::from(cluster.as_str()),
        service: ServiceName::new("app".to_owned()),
    };
    let forced = now();
    let v = coordinator
        .redeploy_and_wait(
            &Account::default(),
            std::slice::from_ref(&svc),
            Duration::from_secs(timeout),
            &Quiet,
        )
        .await;
    Seen {
        forced,
        verdict: verdict_text(v.get(&svc)),
        at: now(),
        calls: None,
        first_call_lag: None,
    }
}

/// Seconds since the epoch of a botocore log line (`2026-11-24 02:08:12,345 - ...`, UTC).
fn log_time(line: &str) -> Option<f64> {
    let stamp = line.get(..23)?;
    let t = chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S,%3f").ok()?;
    Some(t.and_utc().timestamp_millis() as f64 / 1000.0)
}

async fn waiter(url: String, cluster: String, timeout: u64, start: tokio::time::Instant) -> Seen {
    tokio::time::sleep_until(start).await;
    ecs_client(&url)
        .update_service()
        .cluster(&cluster)
        .service("app")
        .force_new_deployment(true)
        .send()
        .await
        .expect("force");
    let forced = now();
    let mut child = tokio::process::Command::new(venv_bin("aws"))
        .args([
            "--debug",
            "ecs",
            "wait",
            "services-stable",
            "--cluster",
            &cluster,
            "--services",
            "app",
            "--endpoint-url",
            &url,
            "--region",
            "us-east-1",
        ])
        // botocore stamps its log in local time.
        .env("TZ", "UTC")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("aws CLI (run scripts/install-tools)");
    let mut stderr = child.stderr.take().expect("stderr");
    let log = tokio::spawn(async move {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s).await;
        s
    });
    let limit = Duration::from_secs(timeout);
    let verdict = tokio::select! {
        s = child.wait() => match s {
            Ok(s) if s.success() => "success (exit 0)".to_owned(),
            Ok(s) => format!("failure (exit {})", s.code().unwrap_or(-1)),
            Err(e) => format!("error: {e}"),
        },
        _ = tokio::time::sleep(limit) => {
            let _ = child.kill().await;
            format!("still waiting at {timeout} s")
        }
    };
    let at = now();
    let log = log.await.unwrap_or_default();
    let calls: Vec<f64> = log
        .lines()
        .filter(|l| l.contains("Sending http request") && l.contains("DescribeServices"))
        .filter_map(log_time)
        .collect();
    Seen {
        forced,
        verdict,
        at,
        calls: Some(calls.len() as u64),
        first_call_lag: calls.first().map(|t| t - forced),
    }
}

async fn create_queue(moto_url: &str, name: &str) -> String {
    let out = tokio::process::Command::new(venv_bin("aws"))
        .args([
            "--endpoint-url",
            moto_url,
            "--region",
            "us-east-1",
            "sqs",
            "create-queue",
            "--queue-name",
            name,
            "--output",
            "text",
            "--query",
            "QueueUrl",
        ])
        .output()
        .await
        .expect("aws sqs create-queue");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// An SDK context whose ECS endpoint is `url` (read from the environment at load time).
async fn ecs_context(url: &str) -> AwsContext {
    std::env::set_var("AWS_ENDPOINT_URL_ECS", url);
    AwsContext::load(&Default::default()).await
}

pub async fn run() -> Value {
    set_aws_env(None, None);
    let (_moto, moto_url) = moto();
    std::env::set_var("AWS_ENDPOINT_URL_SQS", &moto_url);
    let began = now();
    let step_timeout = Duration::from_secs(30);
    let telemetry = Arc::new(secret_rotator::telemetry::NoTelemetry);

    let mut sims: Vec<(Proc, String)> = Vec::new(); // kept alive until the end
    let mut tasks = Vec::new();
    let mut listeners = Vec::new();
    let mut urls = serde_json::Map::new();
    let t0 = tokio::time::Instant::now() + Duration::from_secs(5);
    for (s, shape) in SHAPES.iter().enumerate() {
        let seed = seed(shape.key);
        let queue = create_queue(&moto_url, &format!("ecs-events-{}", shape.key)).await;
        for mode in MODES {
            let (proc_, url) = if mode == "events" {
                ecs_sim(
                    &seed,
                    &[
                        "--time-scale",
                        "1",
                        "--events-queue-url",
                        &queue,
                        "--events-endpoint-url",
                        &moto_url,
                    ],
                )
            } else {
                ecs_sim(&seed, &["--time-scale", "1"])
            };
            urls.insert(format!("{}/{mode}", shape.key), json!(url));
            let coordinator = match mode {
                "polling" => Some(Coordinator::new(
                    Arc::new(secret_rotator::aws::ecs::AwsEcs::new(
                        ecs_context(&url).await,
                    )),
                    Duration::ZERO,
                    step_timeout,
                    telemetry.clone(),
                )),
                "events" => {
                    let c = Coordinator::with_events(
                        Arc::new(secret_rotator::aws::ecs::AwsEcs::new(
                            ecs_context(&url).await,
                        )),
                        Duration::ZERO,
                        step_timeout,
                        telemetry.clone(),
                        Some(DEFAULT_SAFETY_POLL),
                        Arc::new(secret_rotator::clock::SystemClock),
                    );
                    let source = SqsEvents::new(
                        AwsContext::load(&Default::default()).await,
                        Account::default(),
                        queue.clone(),
                    );
                    listeners.push(tokio::spawn(listen(
                        source,
                        c.clone(),
                        std::future::pending::<()>(),
                    )));
                    Some(c)
                }
                _ => None,
            };
            for i in 0..PER_SHAPE {
                let (_, timeout) = service(shape.key, i);
                // The same moment for every side: rollout k of the run at t0 + k × STAGGER.
                let start = t0 + STAGGER * (s * PER_SHAPE + i) as u32;
                let cl = cluster(shape.key, i);
                let task = match &coordinator {
                    Some(c) => tokio::spawn(ours(c.clone(), cl, timeout, start)),
                    None => tokio::spawn(waiter(url.clone(), cl, timeout, start)),
                };
                tasks.push((shape.key, mode, i, url.clone(), task));
            }
            sims.push((proc_, url));
        }
    }
    let base: Vec<u64> = sims.iter().map(|(_, u)| describe_calls(u)).collect();

    let mut seen = Vec::new();
    for (shape, mode, i, url, task) in tasks {
        seen.push((shape, mode, i, url, task.await.expect("rollout task")));
    }
    for l in listeners {
        l.abort();
    }
    let mut calls = serde_json::Map::new();
    for ((_, url), b) in sims.iter().zip(base) {
        let key = urls
            .iter()
            .find(|(_, u)| u.as_str() == Some(url.as_str()))
            .map(|(k, _)| k.clone())
            .unwrap_or_default();
        calls.insert(key, json!(describe_calls(url) - b));
    }
    let mut events = serde_json::Map::new();
    for (_, url) in &sims {
        let e = http_get_json(&format!("{url}/_sim/events"));
        if e["queueUrl"].is_string() {
            events.insert(
                url.clone(),
                json!({"published": e["published"], "sent": e["sent"], "failed": e["failed"]}),
            );
        }
    }

    let mut shapes = Vec::new();
    for shape in SHAPES.iter() {
        let mut rows = Vec::new();
        for i in 0..PER_SHAPE {
            let cl = cluster(shape.key, i);
            let mut row = serde_json::Map::new();
            row.insert("cluster".into(), json!(cl));
            for mode in MODES {
                let Some((.., url, s)) = seen
                    .iter()
                    .find(|(sh, m, j, ..)| *sh == shape.key && *m == mode && *j == i)
                else {
                    continue;
                };
                let done = completions(url, &cl);
                let at = |kind: &str| {
                    done.iter()
                        .find(|(k, _)| k == kind)
                        .map(|c| c.1)
                        .unwrap_or(f64::NAN)
                };
                let (_, timeout) = service(shape.key, i);
                // The instant the verdict became knowable: the rollout's completion; for a
                // rollback the breaker tripping; for a stall the timeout.
                let reference = match shape.key {
                    "rollback" => at("failed"),
                    "stall" => s.forced + timeout as f64,
                    _ => at("completed"),
                };
                let settled = match shape.key {
                    "rollback" => at("rolled_back"),
                    "stall" => f64::NAN,
                    _ => at("completed"),
                };
                row.insert(
                    mode.into(),
                    json!({
                        "rollout_secs": settled - s.forced,
                        "reference_secs": reference - s.forced,
                        "late_secs": s.at - reference,
                        "verdict": s.verdict,
                        "calls": s.calls,
                        "first_call_lag_secs": s.first_call_lag,
                    }),
                );
            }
            rows.push(Value::Object(row));
        }
        shapes.push(json!({
            "shape": shape.key,
            "expect": shape.expect,
            "seed": seed(shape.key),
            "rows": rows,
            "describe_calls": {
                "polling": calls.get(&format!("{}/polling", shape.key)),
                "events": calls.get(&format!("{}/events", shape.key)),
                "waiter": calls.get(&format!("{}/waiter", shape.key)),
            },
        }));
    }
    json!({
        "per_shape": PER_SHAPE,
        "stagger_secs": STAGGER.as_secs_f64(),
        "safety_poll_secs": DEFAULT_SAFETY_POLL.as_secs(),
        "wall_secs": now() - began,
        "shapes": shapes,
        "events": events,
    })
}
