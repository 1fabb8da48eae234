//! Scenario 1: how soon after a rollout really completes each side reports it, and how
//! many DescribeServices calls it makes. Ours: the engine's waiter. Peer: `aws ecs wait
//! services-stable`. Each side gets its own ecs-sim (same seed, real time) so the call
//! counters are separate.

use crate::servers::{ecs_client, ecs_sim, http_get_json, venv_bin};
use secret_rotator::ids::{Account, ClusterName, ServiceName, ServiceRef};
use secret_rotator::rotation::coordinator::Coordinator;
use secret_rotator::rotation::wait::ServiceVerdict;
use secret_rotator::rotation::Quiet;
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const ROLLOUTS: usize = 20;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// 20 healthy services with varied start and drain times, plus a failing and a stalling one.
fn seed() -> String {
    let mut services = Vec::new();
    for i in 0..ROLLOUTS {
        let start = 10 + (i * 7) % 50;
        let drain = 5 + (i * 11) % 25;
        services.push(format!(
            r#"{{"name":"svc{i}","desiredCount":2,"startSecs":{start},"drainSecs":{drain}}}"#
        ));
    }
    services
        .push(r#"{"name":"rollback","desiredCount":2,"behavior":"failing","startSecs":10}"#.into());
    services.push(r#"{"name":"stall","desiredCount":2,"behavior":"stall"}"#.into());
    format!(
        r#"{{"clusters":[{{"name":"bench","services":[{}]}}]}}"#,
        services.join(",")
    )
}

fn names() -> Vec<String> {
    let mut v: Vec<String> = (0..ROLLOUTS).map(|i| format!("svc{i}")).collect();
    v.push("rollback".into());
    v.push("stall".into());
    v
}

async fn force_all(url: &str) -> Vec<(String, String, f64)> {
    let c = ecs_client(url);
    let mut out = Vec::new();
    for n in names() {
        let r = c
            .update_service()
            .cluster("bench")
            .service(&n)
            .force_new_deployment(true)
            .send()
            .await
            .expect("force");
        let id = r
            .service()
            .and_then(|s| {
                s.deployments()
                    .iter()
                    .find(|d| d.status() == Some("PRIMARY"))
            })
            .and_then(|d| d.id())
            .unwrap_or_default()
            .to_owned();
        out.push((n, id, now()));
    }
    out
}

fn completion_times(url: &str) -> std::collections::HashMap<String, (f64, String)> {
    let mut m = std::collections::HashMap::new();
    if let Some(list) = http_get_json(&format!("{url}/_sim/completions")).as_array() {
        for c in list {
            let svc = c["service"].as_str().unwrap_or_default().to_owned();
            let wall = c["wallTime"].as_f64().unwrap_or(0.0);
            let kind = c["kind"].as_str().unwrap_or_default().to_owned();
            // The last event per service is what settles it.
            m.insert(svc, (wall, kind));
        }
    }
    m
}

fn describe_calls(url: &str) -> u64 {
    http_get_json(&format!("{url}/_sim/calls"))["DescribeServices"]
        .as_u64()
        .unwrap_or(0)
}

pub async fn run(stall_timeout: u64) -> serde_json::Value {
    let seed = seed();
    let (_ours_sim, ours_url) = ecs_sim(&seed, &["--time-scale", "1"]);
    let (_peer_sim, peer_url) = ecs_sim(&seed, &["--time-scale", "1"]);
    crate::servers::set_aws_env(None, Some(&ours_url));
    let ctx = secret_rotator::aws::AwsContext::load(&Default::default()).await;
    let ecs = std::sync::Arc::new(secret_rotator::aws::ecs::AwsEcs::new(ctx));

    let base_ours = describe_calls(&ours_url);
    let peer_forced = force_all(&peer_url).await;
    let base_peer = describe_calls(&peer_url);

    // Ours: the deploy coordinator forces and follows every service (no coalescing: one
    // rotation per service), as the daemon's rotations would.
    let coordinator = Coordinator::new(
        ecs,
        Duration::ZERO,
        Duration::from_secs(30),
        std::sync::Arc::new(secret_rotator::telemetry::NoTelemetry),
    );
    let mut ours_tasks = Vec::new();
    let mut ours_forced = Vec::new();
    for name in names() {
        let c = coordinator.clone();
        ours_forced.push((name.clone(), String::new(), now()));
        ours_tasks.push(tokio::spawn(async move {
            let svc = ServiceRef {
                cluster: ClusterName::from("bench"),
                service: ServiceName::new(name.clone()),
            };
            let timeout = Duration::from_secs(if name == "stall" { stall_timeout } else { 600 });
            let v = c
                .redeploy_and_wait(
                    &Account::default(),
                    std::slice::from_ref(&svc),
                    timeout,
                    &Quiet,
                )
                .await;
            (name, v.get(&svc).cloned(), now())
        }));
    }
    // Peer: the CLI waiter, one process per service.
    let mut peer_tasks = Vec::new();
    for (name, _, _) in peer_forced.clone() {
        let url = peer_url.clone();
        peer_tasks.push(tokio::spawn(async move {
            let mut cmd = tokio::process::Command::new(venv_bin("aws"));
            cmd.args([
                "ecs",
                "wait",
                "services-stable",
                "--cluster",
                "bench",
                "--services",
                &name,
                "--endpoint-url",
                &url,
                "--region",
                "us-east-1",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
            let limit = Duration::from_secs(if name == "stall" { stall_timeout } else { 600 });
            let r = tokio::time::timeout(limit, cmd.output()).await;
            let verdict = match r {
                Ok(Ok(o)) if o.status.success() => "success (exit 0)".to_owned(),
                Ok(Ok(o)) => format!("failure (exit {})", o.status.code().unwrap_or(-1)),
                Ok(Err(e)) => format!("error: {e}"),
                Err(_) => format!(
                    "still waiting after {}s (gives up after 10 min)",
                    limit.as_secs()
                ),
            };
            (name, verdict, now())
        }));
    }
    let mut ours = Vec::new();
    for t in ours_tasks {
        ours.push(t.await.expect("ours task"));
    }
    let mut peer = Vec::new();
    for t in peer_tasks {
        peer.push(t.await.expect("peer task"));
    }
    let ours_calls = describe_calls(&ours_url) - base_ours;
    let peer_calls = describe_calls(&peer_url) - base_peer;
    let ours_done = completion_times(&ours_url);
    let peer_done = completion_times(&peer_url);

    let mut rows = Vec::new();
    for i in 0..ROLLOUTS {
        let name = format!("svc{i}");
        let (_, v, t_ours) = ours.iter().find(|(n, ..)| *n == name).cloned().unwrap();
        let (_, pv, t_peer) = peer.iter().find(|(n, ..)| *n == name).cloned().unwrap();
        let c_ours = ours_done.get(&name).map(|c| c.0).unwrap_or(f64::NAN);
        let c_peer = peer_done.get(&name).map(|c| c.0).unwrap_or(f64::NAN);
        let forced = ours_forced
            .iter()
            .find(|(n, ..)| *n == name)
            .map(|f| f.2)
            .unwrap_or(0.0);
        rows.push(json!({
            "service": name,
            "rollout_secs": c_ours - forced,
            "ours_late_secs": t_ours - c_ours,
            "ours_verdict": v.map(|v| v.label()).unwrap_or("none"),
            "peer_late_secs": t_peer - c_peer,
            "peer_verdict": pv,
        }));
    }
    let verdict = |name: &str| -> (String, String) {
        let o = ours
            .iter()
            .find(|(n, ..)| n == name)
            .and_then(|(_, v, _)| v.clone());
        let o = match o {
            Some(ServiceVerdict::RolledBack { reason, .. }) => format!("rolled_back: {reason}"),
            Some(ServiceVerdict::Stalled {
                running, desired, ..
            }) => format!("stalled ({running}/{desired} new tasks running at the timeout)"),
            Some(v) => v.label().to_owned(),
            None => "none".into(),
        };
        let p = peer
            .iter()
            .find(|(n, ..)| n == name)
            .map(|(_, v, _)| v.clone())
            .unwrap_or_default();
        (o, p)
    };
    let (rb_ours, rb_peer) = verdict("rollback");
    let (st_ours, st_peer) = verdict("stall");
    json!({
        "rows": rows,
        "ours_describe_calls": ours_calls,
        "peer_describe_calls": peer_calls,
        "rollback": {"ours": rb_ours, "peer": rb_peer},
        "stall": {"ours": st_ours, "peer": st_peer, "timeout_secs": stall_timeout},
    })
}
