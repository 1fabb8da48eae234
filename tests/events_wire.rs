//! The SQS event source (`aws::events::SqsEvents`) over the wire against moto: ECS
//! deployment events in EventBridge envelopes are received, parsed and deleted; foreign
//! messages come back as handles only, so they are deleted too. Needs moto
//! (`scripts/install-tools`).

mod common;

use aws_sdk_sqs::types::QueueAttributeName;
use common::*;
use secret_rotator::aws::events::SqsEvents;
use secret_rotator::aws::AwsContext;
use secret_rotator::config::AwsConfig;
use secret_rotator::error::ErrorClass;
use secret_rotator::ids::{Account, DeploymentId, Region};
use secret_rotator::rotation::events::{DeployEvent, DeployEventKind, DeployEvents, Received};
use serde_json::json;
use std::time::Duration;

const SERVICE: &str = "arn:aws:ecs:us-east-1:123456789012:service/prod/api";

fn account() -> Account {
    Account::new(Some(Region::from("us-east-1")), None)
}

async fn events_for(queue_url: &str) -> SqsEvents {
    let ctx = AwsContext::load(&AwsConfig {
        region: Some(Region::from("us-east-1")),
        ..AwsConfig::default()
    })
    .await;
    SqsEvents::new(ctx, account(), queue_url)
}

/// The test's own client, for what the port does not do (create, send, count).
fn sqs(url: &str) -> aws_sdk_sqs::Client {
    sqs_client(url)
}

async fn create_queue(c: &aws_sdk_sqs::Client, name: &str) -> String {
    c.create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("CreateQueue")
        .queue_url()
        .expect("queue URL")
        .to_owned()
}

async fn send(c: &aws_sdk_sqs::Client, queue: &str, body: &str) {
    c.send_message()
        .queue_url(queue)
        .message_body(body)
        .send()
        .await
        .expect("SendMessage");
}

/// Messages in the queue, visible or received and not yet deleted.
async fn left(c: &aws_sdk_sqs::Client, queue: &str) -> (u64, u64) {
    let out = c
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("GetQueueAttributes");
    let get = |n: QueueAttributeName| {
        out.attributes()
            .and_then(|a| a.get(&n))
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX)
    };
    (
        get(QueueAttributeName::ApproximateNumberOfMessages),
        get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

fn envelope(name: &str, event_type: &str, id: &str, updated: &str, reason: &str) -> String {
    json!({
        "version": "0",
        "id": format!("event-{id}"),
        "detail-type": "ECS Deployment State Change",
        "source": "aws.ecs",
        "account": "123456789012",
        "time": "2026-03-03T02:00:05Z",
        "region": "us-east-1",
        "resources": [SERVICE],
        "detail": {
            "eventType": event_type,
            "eventName": name,
            "deploymentId": id,
            "updatedAt": updated,
            "reason": reason,
        }
    })
    .to_string()
}

/// Receives until `handles` handles arrived (moto may split a batch).
async fn receive_all(events: &SqsEvents, handles: usize) -> Received {
    let mut all = Received::default();
    for _ in 0..20 {
        if all.handles.len() >= handles {
            break;
        }
        let got = events
            .receive(Duration::from_secs(1))
            .await
            .expect("ReceiveMessage");
        assert!(got.handles.len() <= 10, "at most one batch per receive");
        all.events.extend(got.events);
        all.handles.extend(got.handles);
    }
    assert_eq!(all.handles.len(), handles, "{all:?}");
    all
}

#[tokio::test]
async fn events_are_received_parsed_and_deleted_and_foreign_messages_only_deleted() {
    let moto = Moto::start();
    point_sdk_at(Some(&moto.url), None);
    let client = sqs(&moto.url);
    let queue = create_queue(&client, "rotator-events").await;
    let events = events_for(&queue).await;

    let info = events.check().await.expect("GetQueueAttributes");
    assert!(
        info.arn
            .as_deref()
            .is_some_and(|a| a.ends_with(":rotator-events")),
        "{info:?}"
    );
    assert_eq!(info.waiting, Some(0));
    assert_eq!(
        events.receive(Duration::ZERO).await.expect("empty receive"),
        Received::default()
    );

    let bodies = [
        envelope(
            "SERVICE_DEPLOYMENT_IN_PROGRESS",
            "INFO",
            "ecs-svc/1",
            "2026-03-03T02:00:01.250Z",
            "ECS deployment ecs-svc/1 in progress.",
        ),
        envelope(
            "SERVICE_DEPLOYMENT_COMPLETED",
            "INFO",
            "ecs-svc/1",
            "2026-03-03T02:00:04Z",
            "ECS deployment ecs-svc/1 completed.",
        ),
        envelope(
            "SERVICE_DEPLOYMENT_FAILED",
            "ERROR",
            "ecs-svc/2",
            "2026-03-03T02:00:05Z",
            "ECS deployment circuit breaker: task failed to start.",
        ),
        // Foreign: another ECS event on the same bus, an S3 test event, not JSON at all.
        json!({"source": "aws.ecs", "detail-type": "ECS Task State Change", "detail": {}})
            .to_string(),
        r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#.to_owned(),
        "not json".to_owned(),
    ];
    for body in &bodies {
        send(&client, &queue, body).await;
    }
    let got = receive_all(&events, bodies.len()).await;
    let mut parsed = got.events.clone();
    parsed.sort_by_key(|e| e.at);
    let at = |s: &str| Some(s.parse().unwrap());
    assert_eq!(
        parsed,
        [
            DeployEvent {
                service_arn: SERVICE.into(),
                deployment_id: DeploymentId::from("ecs-svc/1"),
                kind: DeployEventKind::InProgress,
                at: at("2026-03-03T02:00:01.250Z"),
                reason: Some("ECS deployment ecs-svc/1 in progress.".into()),
            },
            DeployEvent {
                service_arn: SERVICE.into(),
                deployment_id: DeploymentId::from("ecs-svc/1"),
                kind: DeployEventKind::Completed,
                at: at("2026-03-03T02:00:04Z"),
                reason: Some("ECS deployment ecs-svc/1 completed.".into()),
            },
            DeployEvent {
                service_arn: SERVICE.into(),
                deployment_id: DeploymentId::from("ecs-svc/2"),
                kind: DeployEventKind::Failed,
                at: at("2026-03-03T02:00:05Z"),
                reason: Some("ECS deployment circuit breaker: task failed to start.".into()),
            },
        ]
    );
    assert_eq!(
        left(&client, &queue).await,
        (0, 6),
        "received, not yet deleted"
    );

    events
        .delete(&got.handles)
        .await
        .expect("DeleteMessageBatch");
    assert_eq!(left(&client, &queue).await, (0, 0), "every message deleted");
    events.delete(&[]).await.expect("nothing to delete");
}

#[tokio::test]
async fn more_than_one_batch_is_deleted_in_batches_of_ten() {
    let moto = Moto::start();
    point_sdk_at(Some(&moto.url), None);
    let client = sqs(&moto.url);
    let queue = create_queue(&client, "rotator-events-many").await;
    let events = events_for(&queue).await;
    for i in 0..23 {
        let id = format!("ecs-svc/{i}");
        let body = envelope(
            "SERVICE_DEPLOYMENT_COMPLETED",
            "INFO",
            &id,
            "2026-03-03T02:00:04Z",
            "done",
        );
        send(&client, &queue, &body).await;
    }
    let got = receive_all(&events, 23).await;
    assert_eq!(got.events.len(), 23);
    events.delete(&got.handles).await.expect("three batches");
    assert_eq!(left(&client, &queue).await, (0, 0));
}

#[tokio::test]
async fn a_missing_queue_is_not_found_and_named() {
    let moto = Moto::start();
    point_sdk_at(Some(&moto.url), None);
    let missing = format!("{}/123456789012/no-such-queue", moto.url);
    let events = events_for(&missing).await;
    let e = events.check().await.expect_err("no queue");
    assert_eq!(e.class, ErrorClass::NotFound, "{e}");
    assert!(e.to_string().contains("GetQueueAttributes"), "{e}");
    assert!(e.to_string().contains("no-such-queue"), "{e}");
    let e = events.receive(Duration::ZERO).await.expect_err("no queue");
    assert_eq!(e.class, ErrorClass::NotFound, "{e}");
}

/// `check` names the `[events]` queue; `check --remote` reads its attributes: a queue that
/// exists passes, a missing one fails naming it.
#[tokio::test(flavor = "multi_thread")]
async fn check_remote_reads_the_events_queue() {
    let moto = Moto::start();
    let q = sqs(&moto.url);
    let queue = create_queue(&q, "rotator-events").await;
    let c = sm_client(&moto.url).await;
    create_secret(&c, "app/key", "initial-Value-1234", &[]).await;
    let cfg = |url: &str| {
        config_dir(&format!(
            "[events]\nqueue_url = \"{url}\"\nregion = \"us-east-1\"\n\n[[secret]]\nname = \"key\"\nsecret_id = \"app/key\"\nevery = \"30d\"\n"
        ))
    };
    let env = aws_env(Some(&moto.url), None);
    let good = cfg(&queue);
    let out = rotator(
        &[
            "check",
            "--remote",
            "--config",
            good.path().to_str().unwrap(),
        ],
        &env,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("events: ECS deployment events from {queue}")),
        "{stdout}"
    );
    let missing = queue.replace("rotator-events", "no-such-queue");
    let bad = cfg(&missing);
    let out = rotator(
        &[
            "check",
            "--remote",
            "--config",
            bad.path().to_str().unwrap(),
        ],
        &env,
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("no-such-queue"), "{all}");
}
