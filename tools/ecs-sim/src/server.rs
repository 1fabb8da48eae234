//! HTTP wiring: shared state, routes, the background ticker and shutdown.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::calls::CallCounter;
use crate::events::Events;
use crate::faults::Faults;
use crate::rng::{mix, uuid_from};
use crate::sim::Sim;
use crate::{admin, api};

/// How often the ticker advances idle services. Transitions carry exact due
/// instants, so this only bounds how stale `/_sim/completions` can look to
/// someone polling it (it also advances on read, so not even that).
const TICK: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct AppState {
    pub sim: Arc<Mutex<Sim>>,
    pub faults: Arc<Mutex<Faults>>,
    pub calls: Arc<CallCounter>,
    pub events: Events,
    request_seq: Arc<AtomicU64>,
    id_seed: u64,
}

impl AppState {
    pub fn new(sim: Sim, faults: Faults, events: Events, id_seed: u64) -> Self {
        Self {
            sim: Arc::new(Mutex::new(sim)),
            faults: Arc::new(Mutex::new(faults)),
            calls: Arc::default(),
            events,
            request_seq: Arc::default(),
            id_seed,
        }
    }

    /// A fresh request id. Hashing a counter needs no lock and leaves the
    /// fault and id generators' sequences untouched.
    pub fn request_id(&self) -> String {
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed);
        let hi = mix(self.id_seed ^ n);
        uuid_from(hi, mix(hi))
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", post(api::handle))
        .route("/_sim/health", get(admin::health))
        .route("/_sim/calls", get(admin::calls))
        .route("/_sim/calls/reset", post(admin::reset_calls))
        .route("/_sim/completions", get(admin::completions))
        .route("/_sim/completions/reset", post(admin::reset_completions))
        .route("/_sim/faults", get(admin::faults).post(admin::set_faults))
        .route("/_sim/behavior", post(admin::set_behavior))
        .route("/_sim/events", get(admin::events).post(admin::set_events))
        .with_state(state)
}

/// Serves until `shutdown` resolves, advancing the simulation in the
/// background so rollouts progress even when nobody calls.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sim = Arc::clone(&state.sim);
    let ticker = tokio::spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        loop {
            interval.tick().await;
            crate::lock(&sim).advance_all();
        }
    });
    let result = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    ticker.abort();
    result
}
