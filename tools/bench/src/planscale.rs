//! Scenario 5: reading due times for 10,000 secrets in moto: ListSecrets pages (what
//! `plan` does) versus one DescribeSecret per secret.

use crate::servers::{moto, set_aws_env, sm_client};
use futures::StreamExt;
use secret_rotator::ids::{Account, SecretId, SecretRef};
use secret_rotator::rotation::store::SecretStore;
use serde_json::json;
use std::time::Instant;

fn calls(op: &str) -> f64 {
    secret_rotator::metrics::get()
        .registry
        .gather()
        .iter()
        .filter(|f| f.name() == "secret_rotator_aws_api_calls_total")
        .flat_map(|f| f.get_metric().iter())
        .filter(|m| {
            m.get_label()
                .iter()
                .any(|l| l.name() == "operation" && l.value() == op)
        })
        .map(|m| m.get_counter().get_value())
        .sum()
}

pub async fn run(n: usize) -> serde_json::Value {
    let (_moto, url) = moto();
    set_aws_env(Some(&url), None);
    let c = sm_client(&url);
    let t0 = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let c = c.clone();
            async move {
                c.create_secret()
                    .name(format!("plan/{i}"))
                    .secret_string("v")
                    .tags(
                        aws_sdk_secretsmanager::types::Tag::builder()
                            .key("secret-rotator:last-rotated")
                            .value("2026-11-01T00:00:00Z")
                            .build(),
                    )
                    .send()
                    .await
                    .expect("create")
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let seed_secs = t0.elapsed().as_secs_f64();
    let refs: Vec<SecretRef> = (0..n)
        .map(|i| SecretRef {
            id: SecretId::new(format!("plan/{i}")),
            account: Account::default(),
            store: Default::default(),
        })
        .collect();
    let ctx = secret_rotator::aws::AwsContext::load(&Default::default()).await;
    let store = secret_rotator::aws::secrets::AwsSecrets::new(ctx);

    let before = calls("ListSecrets") + calls("DescribeSecret");
    let t0 = Instant::now();
    let listed = secret_rotator::rotation::store::describe_all(&store, &refs).await;
    let list_secs = t0.elapsed().as_secs_f64();
    let list_calls = calls("ListSecrets") + calls("DescribeSecret") - before;
    let list_ok = listed.iter().filter(|r| r.is_ok()).count();

    let before = calls("DescribeSecret");
    let t0 = Instant::now();
    let described: Vec<_> = futures::stream::iter(refs.iter())
        .map(|r| store.describe(r))
        .buffered(16)
        .collect()
        .await;
    let describe_secs = t0.elapsed().as_secs_f64();
    let describe_calls = calls("DescribeSecret") - before;
    let describe_ok = described.iter().filter(|r| r.is_ok()).count();
    json!({
        "secrets": n, "seed_secs": seed_secs,
        "list": {"calls": list_calls, "secs": list_secs, "ok": list_ok},
        "describe": {"calls": describe_calls, "secs": describe_secs, "ok": describe_ok},
    })
}
