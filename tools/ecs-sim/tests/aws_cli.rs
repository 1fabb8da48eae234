//! The `aws` CLI (awscli v1, botocore) against the simulator: proves the
//! `services-stable` waiter understands our DescribeServices answers.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{seed_file, wait_for, SimProcess};
use tokio::process::Command;

fn aws_available() -> bool {
    std::process::Command::new("aws")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

async fn wait_stable(sim: &SimProcess, service: &str) -> std::process::Output {
    let run = Command::new("aws")
        .args([
            "ecs",
            "wait",
            "services-stable",
            "--cluster",
            "prod",
            "--services",
            service,
        ])
        .args(["--endpoint-url", &sim.url, "--region", "us-east-1"])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .kill_on_drop(true)
        .output();
    // The waiter polls every 15 s; both cases below decide on the first poll.
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("aws ecs wait finished in time")
        .expect("run aws")
}

#[tokio::test]
async fn aws_cli_waiter_sees_a_forced_rollout_finish() {
    if !aws_available() {
        eprintln!("skipping: the aws CLI is not on PATH");
        return;
    }
    let seed = seed_file(
        r#"{"clusters":[{"name":"prod","services":[{"name":"front","desiredCount":2,"taskDefinition":"front:1"}]}]}"#,
    );
    let sim = SimProcess::start(&["--time-scale", "100", "--seed", seed.to_str().unwrap()]);
    let _ = std::fs::remove_file(&seed);
    sim.client()
        .update_service()
        .cluster("prod")
        .service("front")
        .force_new_deployment(true)
        .send()
        .await
        .unwrap();
    // Finish the rollout (0.3 s real) before the CLI's first poll, since its
    // second poll would come 15 s later.
    wait_for(
        "the rollout to complete",
        Duration::from_secs(10),
        || async { (!sim.completions("front").await.is_empty()).then_some(()) },
    )
    .await;
    let out = wait_stable(&sim, "front").await;
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A missing service hits the waiter's failure acceptor at once.
    let out = wait_stable(&sim, "ghost").await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("MISSING"));
}
