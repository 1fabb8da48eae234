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

/// `start`: wall-clock epoch seconds, shared with the other sides' processes.
async fn ours(
    coordinator: Coordinator<secret_rotator::aws::ecs::AwsEcs>,
    cluster: String,
    timeout: u64,
    start: f64,
) -> Seen {
    tokio::time::sleep(Duration::from_secs_f64((start - now()).max(0.0))).await;
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

async fn waiter(url: String, cluster: String, timeout: u64, start: f64) -> Seen {
    tokio::time::sleep(Duration::from_secs_f64((start - now()).max(0.0))).await;
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

/// When rollout `k` of the run is forced, on every side.
fn start_of(t0: f64, shape: usize, i: usize) -> f64 {
    t0 + STAGGER.as_secs_f64() * (shape * PER_SHAPE + i) as f64
}

/// One of our sides for one shape, in its own process (`bench stable-side`): the SDK
/// reads the ECS endpoint from the environment when a client is built, so one process
/// can only reach one ecs-sim. Prints each rollout's force time, verdict and its time.
pub async fn side(mode: &str, shape: &str, ecs_url: &str, moto_url: &str, t0: f64) -> Value {
    set_aws_env(None, Some(ecs_url));
    std::env::set_var("AWS_ENDPOINT_URL_SQS", moto_url);
    let s = SHAPES.iter().position(|x| x.key == shape).expect("shape");
    let step_timeout = Duration::from_secs(30);
    let telemetry = Arc::new(secret_rotator::telemetry::NoTelemetry);
    let ecs = Arc::new(secret_rotator::aws::ecs::AwsEcs::new(
        AwsContext::load(&Default::default()).await,
    ));
    let mut listener = None;
    let coordinator = if mode == "events" {
        let c = Coordinator::with_events(
            ecs,
            Duration::ZERO,
            step_timeout,
            telemetry,
            Some(DEFAULT_SAFETY_POLL),
            Arc::new(secret_rotator::clock::SystemClock),
        );
        let source = SqsEvents::new(
            AwsContext::load(&Default::default()).await,
            Account::default(),
            queue_url(moto_url, shape),
        );
        listener = Some(tokio::spawn(listen(
            source,
            c.clone(),
            std::future::pending::<()>(),
        )));
        c
    } else {
        Coordinator::new(ecs, Duration::ZERO, step_timeout, telemetry)
    };
    let tasks: Vec<_> = (0..PER_SHAPE)
        .map(|i| {
            let (_, timeout) = service(shape, i);
            tokio::spawn(ours(
                coordinator.clone(),
                cluster(shape, i),
                timeout,
                start_of(t0, s, i),
            ))
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        let r = t.await.expect("rollout task");
        out.push(json!({"forced": r.forced, "verdict": r.verdict, "at": r.at}));
    }
    if let Some(l) = listener {
        l.abort();
    }
    Value::Array(out)
}

/// moto's URL of a shape's event queue (moto names its queues under its own origin).
fn queue_url(moto_url: &str, shape: &str) -> String {
    format!("{moto_url}/123456789012/ecs-events-{shape}")
}

pub async fn run() -> Value {
    set_aws_env(None, None);
    let (_moto, moto_url) = moto();
    std::env::set_var("AWS_ENDPOINT_URL_SQS", &moto_url);
    let began = now();
    let mut sims: Vec<(Proc, String)> = Vec::new(); // kept alive until the end
    let mut waiters = Vec::new();
    let mut sides = Vec::new();
    let mut urls = serde_json::Map::new();
    // Room for every process to start before the first force.
    let t0 = now() + 10.0;
    for (s, shape) in SHAPES.iter().enumerate() {
        let seed = seed(shape.key);
        let queue = create_queue(&moto_url, &format!("ecs-events-{}", shape.key)).await;
        assert_eq!(queue, queue_url(&moto_url, shape.key), "moto's queue URL");
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
            if mode == "waiter" {
                for i in 0..PER_SHAPE {
                    let (_, timeout) = service(shape.key, i);
                    let start = start_of(t0, s, i);
                    let task =
                        tokio::spawn(waiter(url.clone(), cluster(shape.key, i), timeout, start));
                    waiters.push((shape.key, mode, i, url.clone(), task));
                }
            } else {
                let child = tokio::process::Command::new(std::env::current_exe().expect("exe"))
                    .args([
                        "stable-side",
                        mode,
                        shape.key,
                        &url,
                        &moto_url,
                        &t0.to_string(),
                    ])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::inherit())
                    .kill_on_drop(true)
                    .spawn()
                    .expect("bench stable-side");
                sides.push((shape.key, mode, url.clone(), child));
            }
            sims.push((proc_, url));
        }
    }
    let base: Vec<u64> = sims.iter().map(|(_, u)| describe_calls(u)).collect();

    let mut seen = Vec::new();
    for (shape, mode, url, child) in sides {
        let out = child.wait_with_output().await.expect("stable-side");
        let text = String::from_utf8_lossy(&out.stdout);
        let list: Value =
            serde_json::from_str(text.lines().last().unwrap_or("null")).unwrap_or(Value::Null);
        for i in 0..PER_SHAPE {
            let r = &list[i];
            seen.push((
                shape,
                mode,
                i,
                url.clone(),
                Seen {
                    forced: r["forced"].as_f64().unwrap_or(f64::NAN),
                    verdict: r["verdict"].as_str().unwrap_or("none").to_owned(),
                    at: r["at"].as_f64().unwrap_or(f64::NAN),
                    calls: None,
                    first_call_lag: None,
                },
            ));
        }
    }
    for (shape, mode, i, url, task) in waiters {
        seen.push((shape, mode, i, url, task.await.expect("waiter task")));
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
