//! Scenario 7: 50 secrets consumed by one shared ECS service, due together (their
//! rotations start over ~5 s). The daemon's engine (`commands::engine`, moto for Secrets
//! Manager, ecs-sim at real time) with `[daemon] redeploy_coalesce = "3s"` against the
//! same with "0s", where every rotation forces its own deployment and each supersedes the
//! previous one. Each run has its own ecs-sim, so UpdateService counts are its own.

use crate::servers::{ecs_sim, http_get_json, moto, set_aws_env, sm_client};
use secret_rotator::aws::AwsContext;
use secret_rotator::rotation::{Outcome, Quiet, RotateOptions};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SEED: &str = r#"{"clusters":[{"name":"shared","services":[
    {"name":"api","desiredCount":2,"startSecs":20,"drainSecs":10}]}]}"#;

async fn one_run(
    moto_url: &str,
    prefix: &str,
    secrets: usize,
    spread: Duration,
    coalesce: &str,
) -> Value {
    let (_sim, sim_url) = ecs_sim(SEED, &["--time-scale", "1"]);
    set_aws_env(Some(moto_url), Some(&sim_url));
    let sm = sm_client(moto_url);
    let mut toml = format!("[daemon]\nredeploy_coalesce = \"{coalesce}\"\n");
    for i in 0..secrets {
        let id = format!("{prefix}/db-{i}");
        sm.create_secret()
            .name(&id)
            .secret_string("an-original-value-9dK2!x")
            .send()
            .await
            .expect("create secret");
        toml.push_str(&format!(
            "\n[[secret]]\nname = \"{prefix}-db-{i}\"\nsecret_id = \"{id}\"\nevery = \"30d\"\nredeploy = [{{ cluster = \"shared\", services = [\"api\"] }}]\n"
        ));
    }
    let dir = std::env::temp_dir().join(format!("bench-shared-{}-{prefix}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.toml"), toml).unwrap();
    let cfg = secret_rotator::config::load_dir(&dir).expect("config");
    let _ = std::fs::remove_dir_all(&dir);
    let ctx = AwsContext::load(&cfg.aws).await;
    let engine =
        secret_rotator::commands::engine(&cfg, ctx, Arc::new(secret_rotator::clock::SystemClock));
    let step = spread / secrets.max(1) as u32;
    let t0 = Instant::now();
    let wall0 = crate::stable::now();
    let runs = cfg.secrets.iter().enumerate().map(|(i, secret)| {
        let engine = &engine;
        async move {
            tokio::time::sleep(step * i as u32).await;
            let r = engine
                .rotate(secret, RotateOptions::default(), &Quiet)
                .await;
            (r, t0.elapsed().as_secs_f64())
        }
    });
    let results = futures::future::join_all(runs).await;
    let all_secs = t0.elapsed().as_secs_f64();
    let mut verdicts: BTreeMap<String, u64> = BTreeMap::new();
    let mut succeeded = 0;
    for (r, _) in &results {
        let key = match r {
            Ok(rep) => {
                if rep.outcome == Outcome::Success {
                    succeeded += 1;
                }
                rep.services
                    .values()
                    .map(|v| v.label())
                    .collect::<Vec<_>>()
                    .join(",")
            }
            Err(e) => format!("error: {:?}", e.outcome()),
        };
        *verdicts.entry(key).or_default() += 1;
    }
    let calls = http_get_json(&format!("{sim_url}/_sim/calls"));
    let completions = http_get_json(&format!("{sim_url}/_sim/completions"));
    let last_completed = completions
        .as_array()
        .and_then(|l| {
            l.iter()
                .filter_map(|c| c["wallTime"].as_f64())
                .reduce(f64::max)
        })
        .map(|w| w - wall0);
    json!({
        "coalesce": coalesce,
        "secrets": secrets,
        "spread_secs": spread.as_secs_f64(),
        "succeeded": succeeded,
        "verdicts": verdicts,
        "update_service": calls["UpdateService"],
        "describe_services": calls["DescribeServices"],
        "completed_rollouts": completions.as_array().map(|l| l.len()),
        "last_rollout_completed_secs": last_completed,
        "all_verdicts_secs": all_secs,
        "first_verdict_secs": results.iter().map(|r| r.1).reduce(f64::min),
    })
}

pub async fn run(secrets: usize, spread_secs: u64) -> Value {
    set_aws_env(None, None);
    let (_moto, moto_url) = moto();
    let spread = Duration::from_secs(spread_secs);
    let coalesced = one_run(&moto_url, "coalesced", secrets, spread, "3s").await;
    let per_secret = one_run(&moto_url, "per-secret", secrets, spread, "0s").await;
    json!({"coalesced": coalesced, "per_secret": per_secret})
}
