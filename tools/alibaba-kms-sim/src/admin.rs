//! The `/_sim/*` control endpoints (plain JSON, not API calls, not signed).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::faults::Queued;
use crate::server::AppState;

fn reply(status: StatusCode, v: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

pub async fn health() -> Response {
    reply(StatusCode::OK, json!({"status": "ok"}))
}

/// API calls received so far, by action.
pub async fn calls(State(app): State<AppState>) -> Response {
    reply(StatusCode::OK, json!(crate::lock(&app.sim).calls))
}

pub async fn reset_calls(State(app): State<AppState>) -> Response {
    crate::lock(&app.sim).calls.clear();
    reply(StatusCode::OK, json!({}))
}

/// The fault settings and the queued faults.
pub async fn faults(State(app): State<AppState>) -> Response {
    let sim = crate::lock(&app.sim);
    reply(
        StatusCode::OK,
        json!({"rate": sim.faults.rate, "kind": sim.faults.kind, "queued": sim.faults.queued}),
    )
}

/// `{"kind": "throttle" | "kms-throttle" | "error" | "unavailable", "count": N,
/// "action": "GetSecretValue"}`: the next N calls (of that action) fail so.
pub async fn queue_fault(State(app): State<AppState>, body: Bytes) -> Response {
    match serde_json::from_slice::<Queued>(&body) {
        Ok(q) => {
            crate::lock(&app.sim).faults.queued.push(q);
            reply(StatusCode::OK, json!({}))
        }
        Err(e) => reply(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
    }
}

/// `{"secs": N | null}`: caps the lifetime of STS credentials issued from now on.
pub async fn sts_ttl(State(app): State<AppState>, body: Bytes) -> Response {
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) => {
            crate::lock(&app.sim).sts_ttl_cap = v.get("secs").and_then(Value::as_u64);
            reply(StatusCode::OK, json!({}))
        }
        Err(e) => reply(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
    }
}
