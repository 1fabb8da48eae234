//! Admin HTTP: /metrics (Prometheus text), /healthz (the loop is alive), /readyz
//! (configuration loaded and the store reached at the last check).
//!
//! Whoever can reach the port must not starve the daemon: a connection has
//! [`Limits::header_read`] to send each request's headers (idle keep-alive included) and
//! [`Limits::connection`] in all; at most [`Limits::max_connections`] are served at once
//! (more are closed on accept, so file descriptors stay bounded); request bodies are
//! refused beyond [`Limits::body_bytes`]. Only GET endpoints, nothing secret.

use super::scheduler::{Health, Liveness};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    /// When the watchdog is on, /healthz fails once the loop has not turned for this long.
    stale_after: Option<u64>,
    live: Arc<std::sync::Mutex<Liveness>>,
}

/// Bounds on what one client of the admin port can hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_read: Duration,
    pub connection: Duration,
    pub max_connections: usize,
    pub body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(5),
            connection: Duration::from_secs(60),
            max_connections: 256,
            body_bytes: 4096,
        }
    }
}

/// Serves `app` on `listener` with `limits` until the process ends.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits) {
    let app = app.layer(axum::extract::DefaultBodyLimit::max(limits.body_bytes));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                max = limits.max_connections,
                "HTTP connection refused: too many open connections"
            );
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read)
                .max_buf_size(16 * 1024);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(limits.connection, conn).await {
                Ok(Err(e)) => tracing::debug!(error = %e, "HTTP connection ended"),
                Err(_) => tracing::debug!("HTTP connection closed: open too long"),
                Ok(Ok(())) => {}
            }
        });
    }
}

pub fn router(health: Arc<Health>, stale_after: Option<u64>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AppState {
            health,
            stale_after,
            live: Arc::default(),
        })
}

/// Streamed in chunks: at 100,000 secrets the text is ~100 MB, never held whole.
async fn metrics() -> impl IntoResponse {
    let chunks = crate::metrics::get()
        .scrape()
        .map(Ok::<_, std::convert::Infallible>);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        axum::body::Body::from_stream(futures::stream::iter(chunks)),
    )
}

async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    if let Some(limit) = s.stale_after {
        let alive = s
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .check(&s.health, std::time::Duration::from_secs(limit));
        if !alive {
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
