//! Protocol, validation and fault injection, through the SDK and raw HTTP.

mod common;

use aws_sdk_ecs::error::ProvideErrorMetadata;
use common::{seed_file, SimProcess};

const TARGET: &str = "AmazonEC2ContainerServiceV20141113";

#[tokio::test]
async fn describe_services_validates_and_reports_missing() {
    let sim = SimProcess::start(&[]);
    let ecs = sim.client();
    ecs.create_service()
        .service_name("web")
        .send()
        .await
        .unwrap();

    let out = ecs
        .describe_services()
        .services("web")
        .services("ghost")
        .send()
        .await
        .unwrap();
    assert_eq!(out.services().len(), 1);
    let failure = &out.failures()[0];
    assert_eq!(failure.reason(), Some("MISSING"));
    assert_eq!(
        failure.arn(),
        Some("arn:aws:ecs:us-east-1:123456789012:service/default/ghost")
    );

    let mut too_many = ecs.describe_services();
    for i in 0..11 {
        too_many = too_many.services(format!("s{i}"));
    }
    let err = too_many.send().await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidParameterException"));

    let err = ecs
        .describe_services()
        .cluster("nowhere")
        .services("web")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ClusterNotFoundException"));

    let err = ecs
        .update_service()
        .service("ghost")
        .desired_count(1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ServiceNotFoundException"));
}

#[tokio::test]
async fn seeded_services_list_in_pages() {
    let seed = seed_file(
        r#"{"clusters":[{"name":"prod","services":[
            {"name":"a"},{"name":"b"},{"name":"c","desiredCount":4,"taskDefinition":"c:7"}]}]}"#,
    );
    let sim = SimProcess::start(&["--seed", seed.to_str().unwrap()]);
    let _ = std::fs::remove_file(&seed);
    let ecs = sim.client();
    let mut arns = Vec::new();
    let mut token = None;
    loop {
        let page = ecs
            .list_services()
            .cluster("prod")
            .max_results(2)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        arns.extend(page.service_arns().iter().cloned());
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(arns.len(), 3);
    assert!(arns[2].ends_with("service/prod/c"));
    let out = ecs
        .describe_services()
        .cluster("prod")
        .services("c")
        .send()
        .await
        .unwrap();
    let c = &out.services()[0];
    assert_eq!(c.running_count(), 4);
    assert!(c
        .task_definition()
        .unwrap()
        .ends_with("task-definition/c:7"));
}

#[tokio::test]
async fn throttling_faults_every_call_and_changes_nothing() {
    let sim = SimProcess::start(&["--throttle-rate", "1.0"]);
    let ecs = sim.client();
    let err = ecs
        .create_service()
        .service_name("web")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ThrottlingException"));
    assert_eq!(err.message(), Some("Rate exceeded"));
    for _ in 0..3 {
        let err = ecs
            .describe_services()
            .services("web")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("ThrottlingException"));
    }
    let calls = sim.get("/_sim/calls").await;
    assert_eq!(calls["CreateService"], 1);
    assert_eq!(calls["DescribeServices"], 3);

    sim.post("/_sim/faults", r#"{"throttleRate":0}"#).await;
    let out = ecs
        .describe_services()
        .services("web")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.failures()[0].reason(),
        Some("MISSING"),
        "the throttled create did nothing"
    );
}

#[tokio::test]
async fn server_errors_are_500s() {
    let sim = SimProcess::start(&["--error-rate", "1"]);
    let err = sim.client().list_services().send().await.unwrap_err();
    assert_eq!(err.code(), Some("ServerException"));
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));
}

#[tokio::test]
async fn call_counter_counts_and_resets() {
    let sim = SimProcess::start(&[]);
    let ecs = sim.client();
    for _ in 0..4 {
        ecs.list_services().send().await.unwrap();
    }
    ecs.describe_clusters().send().await.unwrap();
    let calls = sim.get("/_sim/calls").await;
    assert_eq!(
        calls,
        serde_json::json!({"ListServices": 4, "DescribeClusters": 1})
    );
    sim.post("/_sim/calls/reset", "").await;
    assert_eq!(sim.get("/_sim/calls").await, serde_json::json!({}));
}

#[tokio::test]
async fn raw_protocol_errors() {
    let sim = SimProcess::start(&[]);
    let json = ("Content-Type", "application/x-amz-json-1.1");

    let target = format!("{TARGET}.Frobnicate");
    let (status, head, body) = sim
        .http_full("POST", "/", &[json, ("X-Amz-Target", &target)], "{}")
        .await;
    assert_eq!(status, 400);
    assert!(head.contains("x-amzn-requestid: "), "{head}");
    assert!(
        body.contains(r#""__type":"UnknownOperationException""#),
        "{body}"
    );

    let target = format!("{TARGET}.DescribeServices");
    let (status, body) = sim
        .http("POST", "/", &[json, ("X-Amz-Target", &target)], "{not json")
        .await;
    assert_eq!(status, 400);
    assert!(
        body.contains(r#""__type":"SerializationException""#),
        "{body}"
    );

    let (status, head, _) = sim
        .http_full(
            "POST",
            "/",
            &[json, ("X-Amz-Target", &format!("{TARGET}.ListServices"))],
            "",
        )
        .await;
    assert_eq!(status, 200);
    assert!(head.contains("x-amzn-requestid: "), "{head}");

    let (status, _) = sim.http("GET", "/_sim/health", &[], "").await;
    assert_eq!(status, 200);
    let (status, body) = sim
        .http("POST", "/_sim/faults", &[], r#"{"errorRate":2}"#)
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = sim
        .http(
            "POST",
            "/_sim/behavior",
            &[],
            r#"{"service":"ghost","behavior":"slow"}"#,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        sim.get("/_sim/calls").await["ListServices"],
        1,
        "admin calls are not counted"
    );
}
