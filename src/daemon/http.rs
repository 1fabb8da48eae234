//! Admin HTTP: /metrics (Prometheus text), /healthz (the loop is alive), /readyz
//! (configuration loaded and the store reached at the last check).

use super::scheduler::Health;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    /// When the watchdog is on, /healthz fails once the loop has not turned for this long.
    stale_after: Option<u64>,
    clock: Arc<dyn crate::clock::Clock>,
}

pub fn router(
    health: Arc<Health>,
    stale_after: Option<u64>,
    clock: Arc<dyn crate::clock::Clock>,
) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AppState {
            health,
            stale_after,
            clock,
        })
}

async fn metrics() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::get().render(),
    )
}

async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    if let Some(limit) = s.stale_after {
        let beat = s.health.heartbeat.load(Ordering::Relaxed);
        let now = s.clock.now().timestamp().max(0) as u64;
        if now.saturating_sub(beat) > limit {
            return (StatusCode::SERVICE_UNAVAILABLE, "scheduler loop stalled\n");
        }
    }
    (StatusCode::OK, "ok\n")
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    let ready = s.health.ready.load(Ordering::Relaxed);
    let store = s.health.store_ok.load(Ordering::Relaxed);
    match (ready, store) {
        (true, true) => (StatusCode::OK, "ready\n".to_owned()),
        (false, _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: loading\n".to_owned(),
        ),
        (true, false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: Secrets Manager could not be reached at the last check\n".to_owned(),
        ),
    }
}
