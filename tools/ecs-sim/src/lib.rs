//! `ecs-sim`: a local Amazon ECS simulator for tests, demos and benchmarks.
//!
//! It speaks the awsJson1_1 protocol that the AWS SDKs and CLI use, and moves
//! rollouts forward on a (possibly accelerated) simulated clock.
#![forbid(unsafe_code)]

mod admin;
mod api;
mod calls;
pub mod cli;
mod clock;
mod error;
mod events;
mod faults;
mod model;
mod names;
mod render;
mod rng;
mod rollout;
mod seed;
mod server;
mod sim;

use std::io::Write;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;

pub use cli::Args;

/// Locks a mutex, ignoring poisoning: every critical section leaves the state
/// consistent between statements, and a server that stops answering after one
/// bug would hide the bug's report.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs the simulator until SIGINT or SIGTERM.
pub async fn run(args: Args) -> Result<(), String> {
    let seed = args.rng_seed.unwrap_or_else(random_seed);
    let defaults = model::SimSettings {
        behavior: model::Behavior::Healthy,
        start_secs: args.start_secs,
        drain_secs: args.drain_secs,
        ..model::SimSettings::default()
    };
    let mut sim = sim::Sim::new(clock::SimClock::new(args.time_scale), defaults, seed);
    if let Some(path) = &args.seed {
        seed::apply(seed::load(path)?, &mut sim)?;
    }
    let fault_config = faults::FaultConfig {
        throttle_rate: args.throttle_rate,
        error_rate: args.error_rate,
        latency_ms: args.latency_ms,
    };
    // Distinct streams, so fault decisions replay the same for a given seed
    // however many ids the rollouts happened to draw.
    let faults = faults::Faults::new(fault_config, rng::mix(seed ^ 0xFA17))?;
    let event_config = events::EventConfig {
        queue_url: args.events_queue_url.clone(),
        endpoint_url: args.events_endpoint_url.clone(),
        delay_ms: args.events_delay_ms,
        loss: args.events_loss,
        duplicate: args.events_duplicate,
    };
    let (events, sink) = events::Events::start(event_config, rng::mix(seed ^ 0xE7E7))?;
    sim.set_events(sink);
    let state = server::AppState::new(sim, faults, events, rng::mix(seed ^ 0x1D));

    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    // Tests and scripts read the port from this exact line.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ecs-sim listening on http://{addr}")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    drop(stdout);

    server::serve(listener, state, shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))
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
        // If the handler cannot be installed, never resolve rather than exit.
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
