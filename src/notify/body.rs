//! The event JSON every sink sends (webhook and SNS as is, change records inside their
//! own envelope): schema `secret-rotator.event/v1`, documented in docs/notifications.md
//! and docs/notification-event.schema.json. Names, ids, verdicts and error texts only.

use chrono::SecondsFormat;
use rotator_core::notify::Event;
use serde_json::{json, Value};

pub const SCHEMA: &str = "secret-rotator.event/v1";

/// Names the ids of events (UUID v5 namespace; any fixed value works).
const ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_bytes([
    0x5e, 0xc7, 0x3e, 0x70, 0x7a, 0x70, 0x4b, 0x1e, 0x9f, 0x1a, 0x2c, 0x6d, 0x0b, 0x8e, 0x51, 0x33,
]);

/// A time as the bodies write it: RFC 3339, UTC, milliseconds.
pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The event's id: the same for every sink and every retry of it (receivers dedupe on
/// it), different for any two events (kind, secret, time to the nanosecond, attempt).
pub fn event_id(ev: &Event) -> String {
    let name = format!(
        "{}\n{}\n{}\n{}",
        ev.kind.label(),
        ev.secret,
        ev.at.to_rfc3339_opts(SecondsFormat::Nanos, true),
        ev.attempt
    );
    uuid::Uuid::new_v5(&ID_NAMESPACE, name.as_bytes()).to_string()
}

/// The event as `secret-rotator.event/v1` JSON.
pub fn event_json(ev: &Event) -> Value {
    let group = ev.group.as_ref().map(|g| {
        json!({
            "name": g.group.as_str(),
            // 1-based, as people count stages.
            "stage": g.stage + 1,
            "stages": g.stages,
            "next": g.next.as_ref().map(|n| n.as_str()),
        })
    });
    let consumers: Vec<Value> = ev
        .consumers
        .iter()
        .map(|c| {
            json!({
                "consumer": c.consumer,
                "verdict": c.verdict,
                "detail": c.detail,
                "events": c.events,
            })
        })
        .collect();
    json!({
        "schema": SCHEMA,
        "id": event_id(ev),
        "kind": ev.kind.label(),
        "at": rfc3339(ev.at),
        "secret": { "name": ev.secret.as_str(), "id": ev.secret_id },
        "group": group,
        "attempt": ev.attempt,
        "outcome": ev.outcome,
        "step": ev.step.map(|s| s.to_string()),
        "error": ev.error,
        "consumers": consumers,
        "version": ev.version.as_ref().map(|v| v.as_str()),
        "action": ev.action,
    })
}
