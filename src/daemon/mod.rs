//! The long-running service: `secret-rotator run`.

pub mod http;
pub mod memory;
pub mod notify;
pub use rotator_core::daemon::{run, Ports};
pub use rotator_core::scheduler;

use crate::clock::{Clock, SystemClock};
use crate::config::load_dir;
use crate::metrics;
use scheduler::Health;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};

fn reload_ok(ok: bool, clock: &dyn Clock) {
    let m = metrics::get();
    m.reload_ok.set(i64::from(ok));
    if ok {
        m.reload_ok_time.set(clock.now().timestamp() as f64);
    }
}

/// Loads the configuration, starts HTTP, connects to AWS, signals READY and runs the
/// daemon ([`rotator_core::daemon::run`]) until SIGTERM/SIGINT; SIGHUP reloads the
/// configuration into it. Returns the process exit code.
pub async fn main(dir: PathBuf) -> i32 {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let cfg = match load_dir(&dir) {
        Ok(c) => c,
        Err(e) => {
            for err in &e.0 {
                tracing::error!(error = %err, "configuration error");
            }
            return crate::commands::report_config_errors(&e);
        }
    };
    reload_ok(true, clock.as_ref());

    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => return fatal(&format!("cannot install the SIGHUP handler: {e}")),
    };
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => return fatal(&format!("cannot install the SIGTERM handler: {e}")),
    };
    let mut int = match signal(SignalKind::interrupt()) {
        Ok(s) => s,
        Err(e) => return fatal(&format!("cannot install the SIGINT handler: {e}")),
    };

    let health = Arc::new(Health::default());
    let watchdog = notify::watchdog_period();
    let listener = match tokio::net::TcpListener::bind(cfg.daemon.listen).await {
        Ok(l) => l,
        Err(e) => return fatal(&format!("cannot listen on {}: {e}", cfg.daemon.listen)),
    };
    let stale_after = watchdog.map(|w| w.as_secs().max(10));
    let app = http::router(health.clone(), stale_after);
    tracing::info!(listen = %cfg.daemon.listen, "serving /metrics, /healthz, /readyz");
    tokio::spawn(http::serve(listener, app, http::Limits::default()));

    // No credentials at all: one line and exit 69, like every command (systemd retries).
    if let Err(code) = crate::commands::connect(&cfg).await {
        return code;
    }
    let engine = Arc::new(crate::commands::aws_engine(&cfg, clock.clone()).await);
    let ha = crate::ha::connect(&cfg, clock.clone()).await;
    // READY does not wait for due times: the loop reads them in the background (at
    // 100,000 secrets that is minutes of ListSecrets pages). /readyz turns 503 only once a
    // completed read pass reached Secrets Manager for none of the secrets.
    health.store_ok.store(true, Ordering::Relaxed);
    health.ready.store(true, Ordering::Relaxed);
    metrics::get().ready.set(1);
    let secrets = cfg.secrets.len();
    let files = cfg.files.len();
    let (reload_tx, reload_rx) = mpsc::channel(4);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    // [[notify]] sinks: a missing HMAC key's variable stops the start (exit 78).
    let sinks = match crate::notify::start(&cfg, clock.clone()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "configuration error");
            eprintln!("error: {e}");
            return crate::exit::CONFIG;
        }
    };
    let ports = rotator_core::daemon::Ports::new(engine, ha, health.clone());
    let ports = if sinks.is_empty() {
        ports
    } else {
        ports.with_notifier(Arc::new(sinks))
    };
    let stopped = async {
        let _ = stop_rx.await;
    };
    let daemon = tokio::spawn(rotator_core::daemon::run(cfg, ports, stopped, reload_rx));
    let status = || health.status.lock().map(|s| s.clone()).unwrap_or_default();
    // The loop sets the status on its first turn.
    tokio::task::yield_now().await;
    notify::ready(&status());
    tracing::info!(secrets, files, "ready");

    let mut dog = watchdog.map(|w| tokio::time::interval(w / 2));
    let mut live = scheduler::Liveness::new();
    // The configuration's parse is garbage now.
    memory::release_free_heap();
    loop {
        tokio::select! {
            _ = hup.recv() => {
                notify::reloading();
                tracing::info!(dir = %dir.display(), "SIGHUP: reloading the configuration");
                match load_dir(&dir) {
                    Ok(new) => {
                        reload_ok(true, clock.as_ref());
                        // `run` warns about what only a restart applies, then applies it.
                        let _ = reload_tx.send(new).await;
                    }
                    Err(e) => {
                        reload_ok(false, clock.as_ref());
                        for err in &e.0 {
                            tracing::error!(error = %err, "reload rejected; keeping the previous configuration");
                        }
                    }
                }
                notify::ready(&status());
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = tick_opt(&mut dog) => {
                // Ping only while the scheduler loop turns (the check pokes it).
                if live.check(&health, Duration::from_secs(stale_after.unwrap_or(u64::MAX))) {
                    notify::watchdog();
                }
            }
            // A due-time pass ended: its pages and buffers are garbage now.
            _ = health.pass_done.notified() => {
                memory::release_free_heap();
            }
            // Only a changed line: a timer repeating it woke the daemon every minute.
            _ = health.status_changed.notified() => notify::status(&status()),
        }
    }
    notify::stopping();
    tracing::info!("stopping");
    health.ready.store(false, Ordering::Relaxed);
    metrics::get().ready.set(0);
    let _ = stop_tx.send(());
    let _ = daemon.await;
    tracing::info!("stopped");
    crate::exit::OK
}

async fn tick_opt(i: &mut Option<tokio::time::Interval>) {
    match i {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn fatal(msg: &str) -> i32 {
    tracing::error!("{msg}");
    eprintln!("error: {msg}");
    crate::exit::UNAVAILABLE
}
