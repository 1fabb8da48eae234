//! `ibm-sm-sim`: a local IBM Cloud Secrets Manager (API v2) with the IAM token
//! endpoint in front of it, for tests. The vendor's Python SDK
//! (`ibm-secrets-manager-sdk`) drives it in `tests/vendor/ibm_conformance.py`, which
//! keeps the request and answer shapes honest.
//!
//! One process is one instance: `POST /identity/token` exchanges an API key given with
//! `--api-key` for a bearer token, and `/api/v2/...` serves `arbitrary`, `kv` and
//! `username_password` secrets, their versions (`current` / `previous`), metadata,
//! secret groups and version locks. `/_sim/...` is for tests: call counts, queued
//! 429/5xx faults, expiring every token.
#![forbid(unsafe_code)]

mod admin;
mod api;
pub mod cli;
mod error;
mod iam;
mod model;
mod render;
mod rng;
mod state;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

pub use cli::Args;
use state::{AppState, Sim};

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/_sim/health", get(admin::health))
        .route("/_sim/calls", get(admin::calls))
        .route("/_sim/calls/reset", post(admin::reset_calls))
        .route(
            "/_sim/faults",
            get(admin::faults)
                .post(admin::add_faults)
                .delete(admin::clear_faults),
        )
        .route("/_sim/tokens/expire", post(admin::expire_tokens))
        .fallback(api::dispatch)
        .with_state(state)
}

/// Binds `args.listen` and builds the app: the bound address and the server to run.
async fn bind(args: &Args) -> Result<(TcpListener, std::net::SocketAddr, Router), String> {
    let seed = args.rng_seed.unwrap_or_else(random_seed);
    let sim = Sim::new(
        args.api_keys.clone(),
        args.token_ttl,
        seed,
        chrono::Utc::now(),
    );
    let state = AppState {
        sim: Arc::new(Mutex::new(sim)),
        crn_prefix: Arc::from(render::crn_prefix(&args.region, &args.instance_id)),
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    Ok((listener, addr, router(state)))
}

/// Runs the simulator until SIGINT or SIGTERM. The first line on stdout is
/// `ibm-sm-sim listening on http://ADDR`.
pub async fn run(args: Args) -> Result<(), String> {
    let (listener, addr, app) = bind(&args).await?;
    // Tests and scripts read the address from this exact line.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ibm-sm-sim listening on http://{addr}")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    drop(stdout);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))
}

/// A simulator served by a task of the current runtime (tests): stopped when dropped.
pub struct Running {
    /// `http://ADDR`, the IAM URL and the instance URL alike.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a simulator in the current runtime.
pub async fn spawn(args: Args) -> Result<Running, String> {
    let (listener, addr, app) = bind(&args).await?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Running {
        url: format!("http://{addr}"),
        task,
    })
}

fn random_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    rng::mix(nanos ^ u64::from(std::process::id()))
}

async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
