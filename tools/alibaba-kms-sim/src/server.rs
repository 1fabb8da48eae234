//! HTTP wiring: shared state and routes.

use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::sim::Sim;
use crate::{admin, api};

#[derive(Clone)]
pub struct AppState {
    pub sim: Arc<Mutex<Sim>>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", any(api::handle))
        .route("/_sim/health", get(admin::health))
        .route("/_sim/calls", get(admin::calls))
        .route("/_sim/calls/reset", post(admin::reset_calls))
        .route("/_sim/faults", get(admin::faults).post(admin::queue_fault))
        .route("/_sim/sts-ttl", post(admin::sts_ttl))
        .layer(DefaultBodyLimit::max(api::MAX_BODY))
        .with_state(state)
}

pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
