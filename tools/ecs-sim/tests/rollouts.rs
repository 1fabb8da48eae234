//! Rollouts driven through the real SDK client.

mod common;

use std::time::Duration;

use aws_sdk_ecs::error::ProvideErrorMetadata;
use aws_sdk_ecs::types::{
    DeploymentCircuitBreaker, DeploymentConfiguration, DeploymentController,
    DeploymentControllerType, DeploymentRolloutState, Service, Tag,
};
use common::{wait_for, SimProcess};

const TIMEOUT: Duration = Duration::from_secs(10);

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

async fn describe(ecs: &aws_sdk_ecs::Client, cluster: &str, service: &str) -> Service {
    let out = ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .expect("DescribeServices");
    out.services()[0].clone()
}

fn primary_state(s: &Service) -> Option<DeploymentRolloutState> {
    s.deployments()[0].rollout_state().cloned()
}

#[tokio::test]
async fn healthy_rollout_completes() {
    let sim = SimProcess::start(&["--time-scale", "100"]);
    let ecs = sim.client();
    ecs.create_cluster()
        .cluster_name("prod")
        .send()
        .await
        .unwrap();
    let created = ecs
        .create_service()
        .cluster("prod")
        .service_name("front")
        .task_definition("front:1")
        .desired_count(2)
        .send()
        .await
        .unwrap();
    let arn = created.service().unwrap().service_arn().unwrap().to_owned();
    assert_eq!(arn, "arn:aws:ecs:us-east-1:123456789012:service/prod/front");

    let out = ecs
        .update_service()
        .cluster("arn:aws:ecs:us-east-1:123456789012:cluster/prod")
        .service(&arn)
        .force_new_deployment(true)
        .send()
        .await
        .unwrap();
    let deployments = out.service().unwrap().deployments();
    assert_eq!(deployments.len(), 2);
    assert_eq!(deployments[0].status(), Some("PRIMARY"));
    assert_eq!(
        deployments[0].rollout_state(),
        Some(&DeploymentRolloutState::InProgress)
    );
    assert_eq!(deployments[0].pending_count(), 2);
    assert_eq!(deployments[1].status(), Some("ACTIVE"));
    assert_eq!(
        deployments[1].rollout_state(),
        Some(&DeploymentRolloutState::Completed)
    );
    assert_eq!(deployments[1].running_count(), 2);
    let new_id = deployments[0].id().unwrap().to_owned();
    assert!(
        new_id.starts_with("ecs-svc/") && new_id.len() == 27,
        "{new_id}"
    );

    let service = wait_for("the rollout to complete", TIMEOUT, || async {
        let s = describe(&ecs, "prod", "front").await;
        (primary_state(&s) == Some(DeploymentRolloutState::Completed)).then_some(s)
    })
    .await;
    assert_eq!(service.deployments().len(), 1);
    assert_eq!(service.deployments()[0].id(), Some(new_id.as_str()));
    assert_eq!(service.running_count(), 2);
    assert_eq!(service.desired_count(), 2);
    let newest = service.events()[0].message().unwrap();
    assert_eq!(newest, "(service front) has reached a steady state.");

    let completions = sim.completions("front").await;
    assert_eq!(completions.len(), 1, "{completions:?}");
    assert_eq!(completions[0]["kind"], "completed");
    assert_eq!(completions[0]["cluster"], "prod");
    assert_eq!(completions[0]["deploymentId"], new_id.as_str());
    // Start (20 s) plus drain (10 s) after the deployment began.
    assert!(completions[0]["simTime"].as_f64().unwrap() >= 30.0);
}

#[tokio::test]
async fn failing_rollout_trips_the_breaker_and_rolls_back() {
    // A slower clock leaves a wide window to observe the rollback in progress.
    let sim = SimProcess::start(&["--time-scale", "20"]);
    let ecs = sim.client();
    ecs.create_service()
        .service_name("pdf")
        .task_definition("pdf:1")
        .desired_count(2)
        .tags(tag("ecs-sim:behavior", "failing"))
        .send()
        .await
        .unwrap();
    let out = ecs
        .update_service()
        .service("pdf")
        .task_definition("pdf:2")
        .send()
        .await
        .unwrap();
    let failed_id = out.service().unwrap().deployments()[0]
        .id()
        .unwrap()
        .to_owned();

    // Three failures at 10 s intervals trip the breaker at 30 s (1.5 s real);
    // the rollback then takes 30 s more.
    let rolling_back = wait_for("the rollback to start", TIMEOUT, || async {
        let s = describe(&ecs, "default", "pdf").await;
        (s.deployments()[0].id() != Some(failed_id.as_str())).then_some(s)
    })
    .await;
    let rollback = &rolling_back.deployments()[0];
    assert_eq!(rollback.status(), Some("PRIMARY"));
    assert_eq!(
        rollback.rollout_state(),
        Some(&DeploymentRolloutState::InProgress)
    );
    assert!(rollback
        .task_definition()
        .unwrap()
        .ends_with("task-definition/pdf:1"));
    assert_eq!(
        rolling_back.deployments().len(),
        2,
        "the failed deployment is gone"
    );
    let messages: Vec<&str> = rolling_back
        .events()
        .iter()
        .filter_map(|e| e.message())
        .collect();
    assert!(messages.iter().any(|m| m.contains(&format!(
        "(deployment {failed_id}) deployment failed: tasks failed to start."
    ))));
    assert_eq!(
        messages
            .iter()
            .filter(|m| m.contains("failed to start: "))
            .count(),
        3
    );

    let done = wait_for("the rollback to complete", TIMEOUT, || async {
        let s = describe(&ecs, "default", "pdf").await;
        (primary_state(&s) == Some(DeploymentRolloutState::Completed)).then_some(s)
    })
    .await;
    assert_eq!(done.deployments().len(), 1);
    assert!(done.task_definition().unwrap().ends_with("pdf:1"));

    let kinds: Vec<(String, String)> = sim
        .completions("pdf")
        .await
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_owned(),
                c["deploymentId"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert_eq!(kinds[0], ("failed".to_owned(), failed_id));
    assert_eq!(kinds[1].0, "rolled_back");
}

#[tokio::test]
async fn failing_without_rollback_reports_failed() {
    let sim = SimProcess::start(&["--time-scale", "100"]);
    let ecs = sim.client();
    let no_rollback = DeploymentConfiguration::builder()
        .deployment_circuit_breaker(
            DeploymentCircuitBreaker::builder()
                .enable(true)
                .rollback(false)
                .build(),
        )
        .build();
    ecs.create_service()
        .service_name("pdf")
        .deployment_configuration(no_rollback)
        .tags(tag("ecs-sim:behavior", "failing"))
        .send()
        .await
        .unwrap();
    ecs.update_service()
        .service("pdf")
        .force_new_deployment(true)
        .send()
        .await
        .unwrap();
    let s = wait_for("the breaker to trip", TIMEOUT, || async {
        let s = describe(&ecs, "default", "pdf").await;
        (primary_state(&s) == Some(DeploymentRolloutState::Failed)).then_some(s)
    })
    .await;
    let failed = &s.deployments()[0];
    assert_eq!(failed.failed_tasks(), 3);
    assert_eq!(
        failed.rollout_state_reason(),
        Some("ECS deployment circuit breaker: tasks failed to start.")
    );
    assert_eq!(s.deployments().len(), 2, "the old deployment keeps serving");
}

#[tokio::test]
async fn stalled_rollout_stays_in_progress_until_the_behaviour_changes() {
    let sim = SimProcess::start(&["--time-scale", "100"]);
    let ecs = sim.client();
    ecs.create_service()
        .service_name("api")
        .desired_count(3)
        .tags(tag("ecs-sim:behavior", "stall"))
        .send()
        .await
        .unwrap();
    ecs.update_service()
        .service("api")
        .force_new_deployment(true)
        .send()
        .await
        .unwrap();
    // One real second is 100 simulated ones: five times a healthy start.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s = describe(&ecs, "default", "api").await;
    assert_eq!(primary_state(&s), Some(DeploymentRolloutState::InProgress));
    assert_eq!(s.deployments().len(), 2);
    assert_eq!(s.deployments()[0].pending_count(), 3);
    assert_eq!(s.deployments()[0].running_count(), 0);
    assert!(sim.completions("api").await.is_empty());

    sim.post(
        "/_sim/behavior",
        r#"{"cluster":"default","service":"api","behavior":"healthy","startSecs":5,"drainSecs":2}"#,
    )
    .await;
    wait_for("the unstalled rollout to complete", TIMEOUT, || async {
        let c = sim.completions("api").await;
        (!c.is_empty()).then_some(())
    })
    .await;
    let s = describe(&ecs, "default", "api").await;
    assert_eq!(s.deployments().len(), 1);
    assert_eq!(s.running_count(), 3);
}

#[tokio::test]
async fn code_deploy_services_refuse_forced_deployments() {
    let sim = SimProcess::start(&["--time-scale", "100"]);
    let ecs = sim.client();
    ecs.create_service()
        .service_name("legacy")
        .deployment_controller(
            DeploymentController::builder()
                .r#type(DeploymentControllerType::CodeDeploy)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let err = ecs
        .update_service()
        .service("legacy")
        .force_new_deployment(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidParameterException"));
    assert!(err
        .message()
        .unwrap()
        .contains("CODE_DEPLOY deployment controller"));
    let s = describe(&ecs, "default", "legacy").await;
    assert_eq!(s.deployments().len(), 1, "nothing was deployed");
    assert_eq!(
        s.deployment_controller().unwrap().r#type(),
        &DeploymentControllerType::CodeDeploy
    );
}

/// (PRIMARY pending, PRIMARY running, running of the older deployments, deployments).
type Counts = (i32, i32, i32, usize);

fn counts(s: &Service) -> Counts {
    let d = s.deployments();
    let old = d.iter().skip(1).map(|d| d.running_count()).sum();
    (d[0].pending_count(), d[0].running_count(), old, d.len())
}

/// Forces a deployment of `service` and returns each distinct state DescribeServices
/// showed until the rollout completed, in order. Polled far faster than states change
/// (every state lasts at least 0.5 s real at the scales used), so none is missed.
async fn force_and_watch(sim: &SimProcess, service: &str) -> Vec<Counts> {
    let ecs = sim.client();
    let out = ecs
        .update_service()
        .service(service)
        .force_new_deployment(true)
        .send()
        .await
        .unwrap();
    let mut seen = vec![counts(out.service().unwrap())];
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let s = describe(&ecs, "default", service).await;
        let c = counts(&s);
        if seen.last() != Some(&c) {
            seen.push(c);
        }
        if primary_state(&s) == Some(DeploymentRolloutState::Completed) {
            return seen;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rollout not completed: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn create(sim: &SimProcess, name: &str, desired: i32, tags: &[(&str, &str)]) {
    let mut req = sim
        .client()
        .create_service()
        .service_name(name)
        .desired_count(desired);
    for (k, v) in tags {
        req = req.tags(tag(k, v));
    }
    req.send().await.unwrap();
}

#[tokio::test]
async fn default_rollout_starts_every_new_task_before_old_ones_drain() {
    // 10 simulated seconds per real one: start 10 s and drain 10 s are 1 s each.
    let sim = SimProcess::start(&["--time-scale", "10"]);
    create(
        &sim,
        "front",
        2,
        &[("ecs-sim:start-secs", "10"), ("ecs-sim:drain-secs", "10")],
    )
    .await;
    assert_eq!(
        force_and_watch(&sim, "front").await,
        [(2, 0, 2, 2), (0, 2, 2, 2), (0, 2, 1, 2), (0, 2, 0, 1)]
    );
}

#[tokio::test]
async fn gradual_rollout_replaces_one_task_at_a_time() {
    let sim = SimProcess::start(&["--time-scale", "10"]);
    create(
        &sim,
        "front",
        3,
        &[
            ("ecs-sim:gradual", "true"),
            ("ecs-sim:start-secs", "5"),
            ("ecs-sim:drain-secs", "5"),
        ],
    )
    .await;
    assert_eq!(
        force_and_watch(&sim, "front").await,
        [
            (1, 0, 3, 2), // one new task starting
            (0, 1, 3, 2), // it runs: one old task is being stopped
            (1, 1, 2, 2), // that one stopped; the next new task starts
            (0, 2, 2, 2),
            (1, 2, 1, 2),
            (0, 3, 1, 2), // all new tasks run; the last old one drains
            (0, 3, 0, 1),
        ]
    );
    let c = sim.completions("front").await;
    assert_eq!(c.len(), 1);
    // Three starts and three stops of 5 s each.
    assert!(c[0]["simTime"].as_f64().unwrap() >= 30.0, "{c:?}");
}

#[tokio::test]
async fn deregistration_delay_keeps_old_tasks_running_after_new_ones_are_up() {
    let sim = SimProcess::start(&["--time-scale", "10"]);
    create(
        &sim,
        "front",
        2,
        &[
            ("ecs-sim:start-secs", "5"),
            ("ecs-sim:drain-secs", "10"),
            ("ecs-sim:deregistration-secs", "20"),
        ],
    )
    .await;
    assert_eq!(
        force_and_watch(&sim, "front").await,
        [(2, 0, 2, 2), (0, 2, 2, 2), (0, 2, 1, 2), (0, 2, 0, 1)]
    );
    let c = sim.completions("front").await;
    // Start 5 s, deregistration 20 s, drain 10 s.
    assert!(c[0]["simTime"].as_f64().unwrap() >= 35.0, "{c:?}");
}

#[tokio::test]
async fn seeded_gradual_rollback_with_deregistration_delay() {
    let seed = common::seed_file(
        r#"{"clusters":[{"name":"default","services":[{"name":"pdf","desiredCount":2,
            "behavior":"failing","gradual":true,"deregistrationSecs":10,
            "startSecs":4,"drainSecs":2}]}]}"#,
    );
    let sim = SimProcess::start(&["--time-scale", "10", "--seed", seed.to_str().unwrap()]);
    let seen = force_and_watch(&sim, "pdf").await;
    // Three failures of the one task launched, then the rollback replaces gradually:
    // the failed deployment is gone, so the states repeat from the start.
    assert_eq!(
        seen,
        [
            (1, 0, 2, 2),
            (0, 1, 2, 2),
            (1, 1, 1, 2),
            (0, 2, 1, 2),
            (0, 2, 0, 1)
        ]
    );
    let kinds: Vec<_> = sim
        .completions("pdf")
        .await
        .iter()
        .map(|c| c["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["failed", "rolled_back"]);
}
