//! The `/_sim/*` control endpoints (plain JSON, not counted as API calls).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::events::EventUpdate;
use crate::faults::FaultUpdate;
use crate::model::{validate_secs, Behavior};
use crate::names;
use crate::server::AppState;

pub struct AdminError(StatusCode, String);

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad_request(message: impl Into<String>) -> AdminError {
    AdminError(StatusCode::BAD_REQUEST, message.into())
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    serde_json::from_slice(body).map_err(|e| bad_request(format!("invalid body: {e}")))
}

pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn calls(State(app): State<AppState>) -> Json<Value> {
    Json(json!(app.calls.snapshot()))
}

pub async fn reset_calls(State(app): State<AppState>) -> Json<Value> {
    app.calls.reset();
    Json(json!({}))
}

pub async fn completions(State(app): State<AppState>) -> Json<Value> {
    let mut sim = crate::lock(&app.sim);
    sim.advance_all();
    Json(json!(sim.completions))
}

pub async fn reset_completions(State(app): State<AppState>) -> Json<Value> {
    crate::lock(&app.sim).completions.clear();
    Json(json!({}))
}

pub async fn faults(State(app): State<AppState>) -> Json<Value> {
    Json(json!(crate::lock(&app.faults).config()))
}

pub async fn set_faults(
    State(app): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, AdminError> {
    let update: FaultUpdate = parse(&body)?;
    let mut faults = crate::lock(&app.faults);
    faults.update(update).map_err(bad_request)?;
    Ok(Json(json!(faults.config())))
}

/// The event publisher's settings and counters, in one object.
fn events_view(app: &AppState) -> Value {
    let mut view = json!(app.events.config());
    if let (Some(view), Value::Object(stats)) = (view.as_object_mut(), json!(app.events.stats())) {
        view.extend(stats);
    }
    view
}

pub async fn events(State(app): State<AppState>) -> Json<Value> {
    Json(events_view(&app))
}

pub async fn set_events(
    State(app): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, AdminError> {
    let update: EventUpdate = parse(&body)?;
    app.events.update(update).map_err(bad_request)?;
    Ok(Json(events_view(&app)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BehaviorUpdate {
    cluster: Option<String>,
    service: String,
    behavior: Option<Behavior>,
    start_secs: Option<f64>,
    drain_secs: Option<f64>,
}

/// Changes how a service's rollouts behave. A rollout in progress restarts
/// its current phase's timer now, under the new settings.
pub async fn set_behavior(
    State(app): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, AdminError> {
    let update: BehaviorUpdate = parse(&body)?;
    let start = update
        .start_secs
        .map(|s| validate_secs("startSecs", s))
        .transpose()
        .map_err(|e| bad_request(e.message))?;
    let drain = update
        .drain_secs
        .map(|s| validate_secs("drainSecs", s))
        .transpose()
        .map_err(|e| bad_request(e.message))?;
    let cluster = names::cluster_name(update.cluster.as_deref());
    let service = names::service_name(&update.service).to_owned();

    let mut sim = crate::lock(&app.sim);
    // Settle what was due under the old settings first.
    sim.advance_all();
    let now = sim.now();
    let svc = sim
        .service_mut(&cluster, &service)
        .map_err(|e| AdminError(StatusCode::NOT_FOUND, e.message))?;
    if let Some(behavior) = update.behavior {
        svc.settings.behavior = behavior;
    }
    if let Some(start) = start {
        svc.settings.start_secs = start;
    }
    if let Some(drain) = drain {
        svc.settings.drain_secs = drain;
    }
    if update.behavior.is_some() || start.is_some() || drain.is_some() {
        svc.reschedule(now);
    }
    let settings = svc.settings;
    Ok(Json(json!({
        "cluster": cluster,
        "service": service,
        "behavior": settings.behavior,
        "startSecs": settings.start_secs,
        "drainSecs": settings.drain_secs,
    })))
}
