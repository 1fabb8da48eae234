//! Scenario 2: AWS calls for one plain rotation with four consumer services, by operation,
//! counted by the daemon's own per-attempt interceptor (aws_api_calls_total).

use crate::servers::{ecs_sim, moto, set_aws_env, sm_client};
use secret_rotator::clock::SystemClock;
use secret_rotator::rotation::{Engine, Quiet, RotateOptions};
use serde_json::json;
use std::sync::Arc;

pub async fn run() -> serde_json::Value {
    let (_moto, moto_url) = moto();
    let seed = r#"{"clusters":[{"name":"prod","services":[
        {"name":"front","desiredCount":2,"startSecs":40,"drainSecs":20},
        {"name":"api","desiredCount":2,"startSecs":40,"drainSecs":20},
        {"name":"pdf","desiredCount":1,"startSecs":40,"drainSecs":20},
        {"name":"admin","desiredCount":1,"startSecs":40,"drainSecs":20}]}]}"#;
    let (_sim, sim_url) = ecs_sim(seed, &["--time-scale", "1"]);
    set_aws_env(Some(&moto_url), Some(&sim_url));
    let c = sm_client(&moto_url);
    c.create_secret()
        .name("prod/api/key")
        .secret_string("initial")
        .send()
        .await
        .expect("create");

    let dir = std::env::temp_dir().join(format!("bench-calls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a.toml"),
        "[[secret]]\nname = \"api-key\"\nsecret_id = \"prod/api/key\"\nevery = \"30d\"\nredeploy = [{ cluster = \"prod\", services = [\"front\", \"api\", \"pdf\", \"admin\"] }]\n",
    )
    .unwrap();
    let cfg = secret_rotator::config::load_dir(&dir).expect("config");
    let _ = std::fs::remove_dir_all(&dir);
    let (store, ecs) = secret_rotator::commands::aws_clients(&cfg).await;
    let engine = Engine::new(store, ecs, Arc::new(SystemClock));
    let t0 = std::time::Instant::now();
    let r = engine
        .rotate(&cfg.secrets[0], RotateOptions::default(), &Quiet)
        .await;
    let secs = t0.elapsed().as_secs_f64();
    let ok = r.is_ok();
    let mut by_op = serde_json::Map::new();
    for fam in secret_rotator::metrics::get().registry.gather() {
        if fam.name() != "secret_rotator_aws_api_calls_total" {
            continue;
        }
        for m in fam.get_metric() {
            let label = |k: &str| {
                m.get_label()
                    .iter()
                    .find(|l| l.name() == k)
                    .map(|l| l.value().to_owned())
                    .unwrap_or_default()
            };
            let key = format!("{} {}", label("service"), label("operation"));
            let v = m.get_counter().get_value();
            let prev = by_op.get(&key).and_then(|x| x.as_f64()).unwrap_or(0.0);
            by_op.insert(key, json!(prev + v));
        }
    }
    json!({"ok": ok, "secs": secs, "calls": by_op})
}
