//! `/_sim/...`: health, call counts, fault injection and token expiry, for tests.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::state::{AppState, Counts, Fault, FaultTarget};

pub async fn health() -> &'static str {
    "ok"
}

pub async fn calls(State(st): State<AppState>) -> Json<Counts> {
    Json(st.lock().counts.clone())
}

pub async fn reset_calls(State(st): State<AppState>) -> StatusCode {
    st.lock().counts = Counts::default();
    StatusCode::NO_CONTENT
}

/// `POST /_sim/faults`: `{"status": 429, "count": 2, "retry_after": 1, "target": "api",
/// "operation": "create_secret", "after": false}` queues `count` faults, each answering one
/// matching call (`after`: the call is done first, then its answer replaced).
#[derive(Debug, Deserialize)]
pub struct FaultRequest {
    status: u16,
    #[serde(default = "one")]
    count: usize,
    #[serde(default)]
    retry_after: Option<u64>,
    #[serde(default)]
    target: FaultTarget,
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    after: bool,
}

fn one() -> usize {
    1
}

pub async fn add_faults(State(st): State<AppState>, Json(req): Json<FaultRequest>) -> Response {
    // 403: a call the API key's service role does not allow (e.g. Writer deleting).
    if !(req.status == 429 || req.status == 403 || (500..=599).contains(&req.status))
        || req.count > 1000
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "status must be 429, 403 or 5xx, count at most 1000"})),
        )
            .into_response();
    }
    let mut sim = st.lock();
    for _ in 0..req.count {
        sim.faults.push_back(Fault {
            status: req.status,
            retry_after: req.retry_after,
            target: req.target,
            operation: req.operation.clone(),
            after: req.after,
        });
    }
    (StatusCode::OK, Json(json!({"queued": sim.faults.len()}))).into_response()
}

pub async fn faults(State(st): State<AppState>) -> Json<Vec<Fault>> {
    Json(st.lock().faults.iter().cloned().collect())
}

pub async fn clear_faults(State(st): State<AppState>) -> StatusCode {
    st.lock().faults.clear();
    StatusCode::NO_CONTENT
}

/// `POST /_sim/tokens/expire`: every token issued so far is expired from now on.
pub async fn expire_tokens(State(st): State<AppState>) -> Json<serde_json::Value> {
    let now = chrono::Utc::now().timestamp_millis();
    let n = st.lock().tokens.expire_all(now);
    Json(json!({"expired": n}))
}
