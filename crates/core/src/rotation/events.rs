//! Deployment state change events (EventBridge -> SQS), as the deploy coordinator sees them.
//!
//! ECS publishes `ECS Deployment State Change` events to EventBridge; a rule targets an
//! SQS queue, whose messages carry the EventBridge envelope as their body
//! (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_service_deployment_events.html>):
//!
//! ```json
//! {"version": "0", "id": "…", "detail-type": "ECS Deployment State Change",
//!  "source": "aws.ecs", "account": "111122223333", "time": "2020-05-23T12:31:14Z",
//!  "region": "us-west-2",
//!  "resources": ["arn:aws:ecs:us-west-2:111122223333:service/default/servicetest"],
//!  "detail": {"eventType": "INFO", "eventName": "SERVICE_DEPLOYMENT_IN_PROGRESS",
//!             "deploymentId": "ecs-svc/123", "updatedAt": "2020-05-23T11:11:11Z",
//!             "reason": "ECS deployment deploymentId in progress."}}
//! ```
//!
//! Events are hints: they can be lost, late, duplicated or out of order, and a service
//! without circuit breaker never sends FAILED. The coordinator confirms what one says
//! with DescribeServices and keeps a slow safety poll.

use crate::error::AwsError;
use crate::ids::DeploymentId;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::future::Future;
use std::time::Duration;

/// SQS bodies are at most 1 MiB; anything larger is not an ECS event, and is not parsed.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

const SOURCE: &str = "aws.ecs";
const DETAIL_TYPE: &str = "ECS Deployment State Change";

/// Which `SERVICE_DEPLOYMENT_*` event it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeployEventKind {
    /// A deployment (or a circuit-breaker rollback) started.
    InProgress,
    /// The service reached a steady state on the deployment.
    Completed,
    /// The circuit breaker failed the deployment.
    Failed,
}

impl DeployEventKind {
    fn from_event_name(name: &str) -> Option<Self> {
        match name {
            "SERVICE_DEPLOYMENT_IN_PROGRESS" => Some(Self::InProgress),
            "SERVICE_DEPLOYMENT_COMPLETED" => Some(Self::Completed),
            "SERVICE_DEPLOYMENT_FAILED" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One ECS deployment state change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployEvent {
    /// The service's full ARN (`arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME`), as
    /// DescribeServices returns it in `serviceArn`.
    pub service_arn: String,
    pub deployment_id: DeploymentId,
    pub kind: DeployEventKind,
    /// When the deployment changed: `detail.updatedAt`, else the envelope's `time`.
    pub at: Option<DateTime<Utc>>,
    /// ECS's `detail.reason` (e.g. why the circuit breaker tripped).
    pub reason: Option<String>,
}

/// What one receive returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Received {
    pub events: Vec<DeployEvent>,
    /// Every receipt handle of the batch, including unparseable or foreign messages: the
    /// queue is ours, and a message nobody deletes comes back forever.
    pub handles: Vec<String>,
}

/// The queue the events arrive on.
pub trait DeployEvents: Send + Sync + 'static {
    /// One long poll (up to `wait` seconds); empty when nothing arrived.
    fn receive(&self, wait: Duration) -> impl Future<Output = Result<Received, AwsError>> + Send;

    /// Delete handled messages (batches of 10).
    fn delete(&self, handles: &[String]) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// Parses one SQS message body (an EventBridge envelope); None for anything that is not
/// an ECS deployment state change (never an error: the queue may carry other events).
pub fn parse_event(body: &str) -> Option<DeployEvent> {
    if body.len() > MAX_BODY_BYTES {
        return None;
    }
    // serde_json bounds its recursion, so a deeply nested body is an error, not a crash.
    let v: Value = serde_json::from_str(body).ok()?;
    if v.get("source")?.as_str()? != SOURCE || v.get("detail-type")?.as_str()? != DETAIL_TYPE {
        return None;
    }
    let detail = v.get("detail")?;
    let kind = DeployEventKind::from_event_name(text(detail, "eventName")?)?;
    let deployment_id = text(detail, "deploymentId")?;
    // ECS names exactly one resource, the service; skip anything else defensively.
    let service_arn = v
        .get("resources")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find(|r| is_service_arn(r))?;
    let at = text(detail, "updatedAt")
        .and_then(timestamp)
        .or_else(|| text(&v, "time").and_then(timestamp));
    Some(DeployEvent {
        service_arn: service_arn.to_owned(),
        deployment_id: DeploymentId::new(deployment_id),
        kind,
        at,
        reason: text(detail, "reason").map(str::to_owned),
    })
}

/// A non-empty string field.
fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)?
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `arn:PARTITION:ecs:REGION:ACCOUNT:service/...` (any partition: aws, aws-cn, ...).
fn is_service_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    matches!(
        parts.as_slice(),
        ["arn", partition, "ecs", region, account, resource]
            if !partition.is_empty()
                && !region.is_empty()
                && !account.is_empty()
                && resource.strip_prefix("service/").is_some_and(|r| !r.is_empty())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:ecs:us-west-2:111122223333:service/default/servicetest";

    /// AWS's documented example of an initial deployment starting.
    const DOCUMENTED: &str = r#"{
        "version": "0",
        "id": "ddca6449-b258-46c0-8653-e0e3a6EXAMPLE",
        "detail-type": "ECS Deployment State Change",
        "source": "aws.ecs",
        "account": "111122223333",
        "time": "2020-05-23T12:31:14Z",
        "region": "us-west-2",
        "resources": [
            "arn:aws:ecs:us-west-2:111122223333:service/default/servicetest"
        ],
        "detail": {
            "eventType": "INFO",
            "eventName": "SERVICE_DEPLOYMENT_IN_PROGRESS",
            "deploymentId": "ecs-svc/123",
            "updatedAt": "2020-05-23T11:11:11Z",
            "reason": "ECS deployment deploymentId in progress."
        }
    }"#;

    fn documented() -> Value {
        serde_json::from_str(DOCUMENTED).unwrap()
    }

    fn parse(v: &Value) -> Option<DeployEvent> {
        parse_event(&v.to_string())
    }

    fn utc(s: &str) -> DateTime<Utc> {
        timestamp(s).unwrap()
    }

    #[test]
    fn the_documented_example() {
        assert_eq!(
            parse_event(DOCUMENTED),
            Some(DeployEvent {
                service_arn: ARN.into(),
                deployment_id: DeploymentId::from("ecs-svc/123"),
                kind: DeployEventKind::InProgress,
                at: Some(utc("2020-05-23T11:11:11Z")),
                reason: Some("ECS deployment deploymentId in progress.".into()),
            })
        );
    }

    #[test]
    fn each_event_name() {
        for (name, event_type, kind) in [
            (
                "SERVICE_DEPLOYMENT_IN_PROGRESS",
                "INFO",
                DeployEventKind::InProgress,
            ),
            (
                "SERVICE_DEPLOYMENT_COMPLETED",
                "INFO",
                DeployEventKind::Completed,
            ),
            (
                "SERVICE_DEPLOYMENT_FAILED",
                "ERROR",
                DeployEventKind::Failed,
            ),
        ] {
            let mut v = documented();
            v["detail"]["eventName"] = json!(name);
            v["detail"]["eventType"] = json!(event_type);
            assert_eq!(parse(&v).map(|e| e.kind), Some(kind), "{name}");
        }
        // Other ECS service events (action events share the source) are not ours.
        for other in ["SERVICE_STEADY_STATE", "service_deployment_completed", ""] {
            let mut v = documented();
            v["detail"]["eventName"] = json!(other);
            assert_eq!(parse(&v), None, "{other}");
        }
    }

    #[test]
    fn a_rollback_keeps_its_reason_and_millisecond_times_parse() {
        let mut v = documented();
        v["detail"]["reason"] =
            json!("ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/122!");
        v["detail"]["updatedAt"] = json!("2020-05-23T11:11:11.256Z");
        let e = parse(&v).unwrap();
        assert_eq!(e.at, Some(utc("2020-05-23T11:11:11.256Z")));
        assert!(e.reason.unwrap().contains("rolling back"));
        v["detail"]["updatedAt"] = json!("2020-05-23T13:11:11+02:00");
        assert_eq!(parse(&v).unwrap().at, Some(utc("2020-05-23T11:11:11Z")));
    }

    #[test]
    fn required_fields_missing_or_mistyped_is_not_an_event() {
        let remove: [&[&str]; 6] = [
            &["source"],
            &["detail-type"],
            &["detail"],
            &["resources"],
            &["detail", "eventName"],
            &["detail", "deploymentId"],
        ];
        for path in remove {
            let mut v = documented();
            match path {
                [k] => v.as_object_mut().unwrap().remove(*k),
                [a, k] => v[*a].as_object_mut().unwrap().remove(*k),
                _ => unreachable!(),
            };
            assert_eq!(parse(&v), None, "without {path:?}");
        }
        for (field, value) in [
            ("resources", json!([])),
            ("resources", json!(ARN)),
            ("resources", json!([42, null])),
            (
                "resources",
                json!(["arn:aws:ecs:us-west-2:111122223333:cluster/default"]),
            ),
            (
                "resources",
                json!(["arn:aws:ecs:us-west-2:111122223333:service/"]),
            ),
            ("resources", json!(["servicetest"])),
            ("detail", json!("SERVICE_DEPLOYMENT_COMPLETED")),
            ("source", json!(["aws.ecs"])),
        ] {
            let mut v = documented();
            v[field] = value.clone();
            assert_eq!(parse(&v), None, "{field} = {value}");
        }
        for (field, value) in [("deploymentId", json!(123)), ("deploymentId", json!("  "))] {
            let mut v = documented();
            v["detail"][field] = value.clone();
            assert_eq!(parse(&v), None, "{field} = {value}");
        }
    }

    #[test]
    fn optional_fields_missing_or_odd_are_none() {
        let mut v = documented();
        v["detail"]["updatedAt"] = json!("yesterday");
        assert_eq!(
            parse(&v).unwrap().at,
            Some(utc("2020-05-23T12:31:14Z")),
            "falls back to time"
        );
        v["time"] = json!(12);
        let mut e = parse(&v).unwrap();
        assert_eq!(e.at, None);
        let detail = v["detail"].as_object_mut().unwrap();
        detail.remove("reason");
        detail.remove("eventType");
        e = parse(&v).unwrap();
        assert_eq!((e.reason, e.kind), (None, DeployEventKind::InProgress));
        // The service ARN is found among other resources, in any partition.
        let mut v = documented();
        let cn = "arn:aws-cn:ecs:cn-north-1:111122223333:service/prod/api";
        v["resources"] = json!(["arn:aws:ecs:us-west-2:111122223333:cluster/prod", cn]);
        assert_eq!(parse(&v).unwrap().service_arn, cn);
    }

    #[test]
    fn other_events_are_not_ours() {
        let mut task = documented();
        task["detail-type"] = json!("ECS Task State Change");
        let mut ec2 = documented();
        ec2["source"] = json!("aws.ec2");
        let mut custom = documented();
        custom["source"] = json!("my.app");
        for v in [task, ec2, custom] {
            assert_eq!(parse(&v), None, "{v}");
        }
        // An SQS test message, an S3 notification, SNS-wrapped bodies: not envelopes.
        let s3 = r#"{"Records":[{"eventSource":"aws:s3"}]}"#;
        let sns = json!({"Type": "Notification", "Message": DOCUMENTED}).to_string();
        for body in [s3, &sns, r#"{"Event":"s3:TestEvent"}"#] {
            assert_eq!(parse_event(body), None, "{body}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let deep = "[".repeat(100_000);
        let huge = format!(
            "{}, \"pad\": \"{}\"}}",
            &DOCUMENTED[..DOCUMENTED.len() - 1],
            "x".repeat(MAX_BODY_BYTES)
        );
        for body in [
            "",
            " ",
            "null",
            "[]",
            "{}",
            "{",
            "42",
            "\"aws.ecs\"",
            "not json at all",
            "\u{feff}{}",
            "{\"source\":\"aws.ecs\",\"detail-type\":\"ECS Deployment State Change\"}",
            &deep,
            &huge,
            &DOCUMENTED[..DOCUMENTED.len() / 2],
        ] {
            assert_eq!(parse_event(body), None, "{:.60}", body);
        }
        // Just under the limit still parses.
        let padded = format!(
            "{DOCUMENTED}{}",
            " ".repeat(MAX_BODY_BYTES - DOCUMENTED.len())
        );
        assert!(parse_event(&padded).is_some());
    }

    proptest! {
        #[test]
        fn any_text_is_an_event_or_none_never_a_panic(body in any::<String>()) {
            let _ = parse_event(&body);
        }

        #[test]
        fn any_value_in_any_documented_field_never_panics(
            field in prop::sample::select(vec![
                "source", "detail-type", "resources", "time", "detail",
                "eventName", "deploymentId", "updatedAt", "reason",
            ]),
            value in prop_oneof![
                Just(json!(null)),
                any::<i64>().prop_map(|n| json!(n)),
                any::<String>().prop_map(|s| json!(s)),
                any::<String>().prop_map(|s| json!([s])),
                Just(json!({})),
            ],
        ) {
            let mut v = documented();
            if ["eventName", "deploymentId", "updatedAt", "reason"].contains(&field) {
                v["detail"][field] = value;
            } else {
                v[field] = value;
            }
            let _ = parse(&v);
        }
    }
}
