//! The SQS message body of one deployment state change: the EventBridge envelope of an
//! "ECS Deployment State Change" event, field for field as AWS documents it
//! (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_service_deployment_events.html>).

use serde_json::{json, Value};

use crate::model::RolloutState;
use crate::names;

/// One change, as the simulation hands it to the publisher.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The same string DescribeServices returns as `serviceArn`.
    pub service_arn: String,
    pub deployment_id: String,
    pub state: RolloutState,
    pub reason: String,
    /// Real epoch seconds of the simulated instant (see `SimClock::wall_epoch`).
    pub wall_time: f64,
}

/// The message body: `id` is the event id (a duplicate delivery repeats it, as an
/// at-least-once redelivery does).
pub fn body(id: &str, change: &Change) -> String {
    envelope(id, change).to_string()
}

fn envelope(id: &str, change: &Change) -> Value {
    let (event_type, event_name) = match change.state {
        RolloutState::InProgress => ("INFO", "SERVICE_DEPLOYMENT_IN_PROGRESS"),
        RolloutState::Completed => ("INFO", "SERVICE_DEPLOYMENT_COMPLETED"),
        RolloutState::Failed => ("ERROR", "SERVICE_DEPLOYMENT_FAILED"),
    };
    json!({
        "version": "0",
        "id": id,
        "detail-type": "ECS Deployment State Change",
        "source": "aws.ecs",
        "account": names::ACCOUNT,
        // EventBridge stamps whole seconds; the detail keeps milliseconds, which is what
        // a consumer measuring its own lateness wants.
        "time": rfc3339(change.wall_time, false),
        "region": names::REGION,
        "resources": [change.service_arn],
        "detail": {
            "eventType": event_type,
            "eventName": event_name,
            "deploymentId": change.deployment_id,
            "updatedAt": rfc3339(change.wall_time, true),
            "reason": change.reason,
        }
    })
}

/// UTC RFC 3339 (`2020-05-23T12:31:14Z`, or `...14.256Z` with milliseconds). Times
/// before 1970 or absurdly far ahead are clamped: the simulator's are always "now".
pub fn rfc3339(epoch_secs: f64, millis: bool) -> String {
    const MAX_MS: f64 = 253_402_300_799_999.0; // 9999-12-31T23:59:59.999Z
    let total_ms = (epoch_secs * 1000.0).floor().clamp(0.0, MAX_MS) as i64;
    let (secs, ms) = (total_ms / 1000, total_ms % 1000);
    let (days, day_secs) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (day_secs / 3600, day_secs / 60 % 60, day_secs % 60);
    if millis {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{ms:03}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `civil_from_days`):
/// a dozen lines instead of a date library for one timestamp format.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0.0, false), "1970-01-01T00:00:00Z");
        // The time of AWS's documented example event.
        assert_eq!(rfc3339(1_590_237_074.0, false), "2020-05-23T12:31:14Z");
        assert_eq!(
            rfc3339(1_590_237_074.256_7, true),
            "2020-05-23T12:31:14.256Z"
        );
        assert_eq!(rfc3339(951_868_799.0, false), "2000-02-29T23:59:59Z");
        assert_eq!(rfc3339(4_107_542_400.0, false), "2100-03-01T00:00:00Z");
        assert_eq!(rfc3339(-5.0, false), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(f64::NAN, false), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1e300, true), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn the_envelope_has_the_documented_fields() {
        let change = Change {
            service_arn: names::service_arn("prod", "front"),
            deployment_id: "ecs-svc/123".into(),
            state: RolloutState::Failed,
            reason: "ECS deployment circuit breaker: tasks failed to start.".into(),
            wall_time: 1_590_237_074.5,
        };
        let v: Value =
            serde_json::from_str(&body("ddca6449-b258-46c0-8653-e0e3a6a3d1a0", &change)).unwrap();
        assert_eq!(v["version"], "0");
        assert_eq!(v["id"], "ddca6449-b258-46c0-8653-e0e3a6a3d1a0");
        assert_eq!(v["detail-type"], "ECS Deployment State Change");
        assert_eq!(v["source"], "aws.ecs");
        assert_eq!(v["account"], "123456789012");
        assert_eq!(v["region"], "us-east-1");
        assert_eq!(v["time"], "2020-05-23T12:31:14Z");
        assert_eq!(
            v["resources"],
            json!(["arn:aws:ecs:us-east-1:123456789012:service/prod/front"])
        );
        let d = &v["detail"];
        assert_eq!(d["eventType"], "ERROR");
        assert_eq!(d["eventName"], "SERVICE_DEPLOYMENT_FAILED");
        assert_eq!(d["deploymentId"], "ecs-svc/123");
        assert_eq!(d["updatedAt"], "2020-05-23T12:31:14.500Z");
        assert_eq!(d["reason"], change.reason);
        for (state, ty, name) in [
            (
                RolloutState::InProgress,
                "INFO",
                "SERVICE_DEPLOYMENT_IN_PROGRESS",
            ),
            (
                RolloutState::Completed,
                "INFO",
                "SERVICE_DEPLOYMENT_COMPLETED",
            ),
        ] {
            let v = envelope(
                "x",
                &Change {
                    state,
                    ..change.clone()
                },
            );
            assert_eq!(
                (
                    v["detail"]["eventType"].as_str(),
                    v["detail"]["eventName"].as_str()
                ),
                (Some(ty), Some(name))
            );
        }
    }
}
