//! `alibaba-kms-sim`: a local Alibaba Cloud KMS Secrets Manager for tests.
//!
//! It speaks the RPC API (version 2016-01-20) the way Alibaba's gateway does: V3
//! (`ACS3-HMAC-SHA256`) or RPC HMAC-SHA1 signatures, JSON answers, JSON errors with
//! the documented codes and statuses; and STS AssumeRole (2015-04-01) on the same port,
//! told apart by the API version. See README.md for what is and is not simulated.
#![forbid(unsafe_code)]

mod admin;
mod api;
mod auth;
pub mod cli;
mod crypto;
mod error;
pub mod faults;
mod kms;
mod params;
mod server;
mod sim;
mod store;
mod sts;

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;

pub use cli::Args;

/// Locks a mutex, ignoring poisoning: every critical section leaves the state
/// consistent between statements.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs the simulator until SIGINT or SIGTERM.
pub async fn run(args: Args) -> Result<(), String> {
    let seed = args.rng_seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default()
            ^ u64::from(std::process::id())
    });
    let mut keys = auth::Keys::default();
    for (id, secret) in args.access_keys {
        keys.add(
            id,
            auth::Key {
                secret,
                session: None,
                role: None,
            },
        );
    }
    let faults = faults::Faults::new(args.fault_rate, args.fault_kind, seed ^ 0xFA17);
    let mut sim = sim::Sim::new(keys, faults, args.roles, args.account_id, args.region, seed);
    sim.store.manual_previous = args.manual_previous;
    let state = server::AppState {
        sim: Arc::new(Mutex::new(sim)),
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    // Tests and scripts read the URL from this exact line.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "alibaba-kms-sim listening on http://{addr}")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    drop(stdout);
    server::serve(listener, state, shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))
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
