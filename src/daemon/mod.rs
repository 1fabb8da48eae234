//! The long-running service: `secret-rotator run`.

pub mod http;
pub mod notify;
pub use rotator_core::scheduler;

use crate::clock::{Clock, SystemClock};
use crate::config::{load_dir, Config};
use crate::metrics;
use scheduler::{Control, Health, Scheduler};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

fn reload_ok(ok: bool, clock: &dyn Clock) {
    let m = metrics::get();
    m.reload_ok.set(i64::from(ok));
    if ok {
        m.reload_ok_time.set(clock.now().timestamp() as f64);
    }
}

/// Loads the configuration, starts HTTP, computes due times, signals READY and runs until
/// SIGTERM/SIGINT. Returns the process exit code.
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
    let app = http::router(health.clone(), stale_after, clock.clone());
    tracing::info!(listen = %cfg.daemon.listen, "serving /metrics, /healthz, /readyz");
    tokio::spawn(http::serve(listener, app, http::Limits::default()));

    // No credentials at all: one line and exit 69, like every command (systemd retries).
    if let Err(code) = crate::commands::connect(&cfg).await {
        return code;
    }
    let engine = Arc::new(crate::commands::aws_engine(&cfg, clock.clone()).await);
    let ha = crate::ha::connect(&cfg, clock.clone()).await;
    let sched = Scheduler::new(engine, clock.clone(), &cfg, health.clone()).with_ha(ha);
    // READY does not wait for due times: the loop reads them in the background (at
    // 100,000 secrets that is minutes of ListSecrets pages). /readyz turns 503 only once a
    // completed read pass reached Secrets Manager for none of the secrets.
    health.store_ok.store(true, Ordering::Relaxed);
    health.ready.store(true, Ordering::Relaxed);
    metrics::get().ready.set(1);
    let (tx, rx) = mpsc::channel(4);
    let loop_task = tokio::spawn(sched.run(rx));
    let status = || health.status.lock().map(|s| s.clone()).unwrap_or_default();
    // The loop sets the status on its first turn.
    tokio::task::yield_now().await;
    notify::ready(&status());
    tracing::info!(
        secrets = cfg.secrets.len(),
        files = cfg.files.len(),
        "ready"
    );

    let mut dog = watchdog.map(|w| tokio::time::interval(w / 2));
    let mut status_tick = tokio::time::interval(Duration::from_secs(60));
    // Only what a reload cannot apply is kept here; the scheduler owns the secrets.
    let mut current = (cfg.daemon.clone(), cfg.aws.clone());
    let ha_cfg = cfg.ha.clone();
    drop(cfg);
    loop {
        tokio::select! {
            _ = hup.recv() => {
                notify::reloading();
                tracing::info!(dir = %dir.display(), "SIGHUP: reloading the configuration");
                match load_dir(&dir) {
                    Ok(new) => {
                        warn_unappliable(&current, &new);
                        if new.ha != ha_cfg {
                            tracing::warn!("[ha] changes apply on restart only");
                        }
                        current = (new.daemon.clone(), new.aws.clone());
                        reload_ok(true, clock.as_ref());
                        let _ = tx.send(Control::Reload(Box::new(new))).await;
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
                // Ping only while the scheduler loop is alive.
                let beat = health.heartbeat.load(Ordering::Relaxed);
                let limit = stale_after.unwrap_or(u64::MAX);
                if (clock.now().timestamp().max(0) as u64).saturating_sub(beat) <= limit {
                    notify::watchdog();
                }
            }
            _ = status_tick.tick() => notify::status(&status()),
        }
    }
    notify::stopping();
    tracing::info!("stopping");
    health.ready.store(false, Ordering::Relaxed);
    metrics::get().ready.set(0);
    let _ = tx.send(Control::Shutdown).await;
    let _ = loop_task.await;
    tracing::info!("stopped");
    crate::exit::OK
}

/// Settings that only a restart applies.
fn warn_unappliable(old: &(crate::config::DaemonConfig, crate::config::AwsConfig), new: &Config) {
    if old.0.listen != new.daemon.listen {
        tracing::warn!(old = %old.0.listen, new = %new.daemon.listen, "daemon.listen changes on restart only");
    }
    if old.1 != new.aws {
        tracing::warn!("[aws] changes apply to new clients on restart only");
    }
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
