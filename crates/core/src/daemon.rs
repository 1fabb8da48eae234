//! The daemon in process: the scheduler loop, the engine and its telemetry, driven by a
//! shutdown future and a channel of reloaded configurations (the shape of mini-redis's
//! `server::run(listener, shutdown)`).
//!
//! What stays outside, in the binary (`secret-rotator run`): reading the configuration
//! directory, signals (SIGHUP sends a reloaded [`Config`] on `reloads`, SIGTERM/SIGINT
//! complete `shutdown`), the HTTP endpoints, systemd notifications, readiness
//! (`Health::ready`) and the AWS clients. What is inside runs as well on paused tokio
//! time against in-memory ports: the deterministic simulation (tests/simulation.rs) runs
//! several of these side by side, crashing and restarting them.

use crate::config::{AwsConfig, Config, DaemonConfig, EventsConfig, HaConfig};
use crate::ha::Ha;
use crate::notify::{NoNotifier, Notifier};
use crate::random::{OsRandom, Random};
use crate::rotation::deploy::Deployer;
use crate::rotation::store::SecretStore;
use crate::rotation::Engine;
use crate::scheduler::{Control, Health, Scheduler};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Everything the daemon talks to. The clock and the telemetry sink are the engine's
/// (`engine.clock`, `engine.telemetry`): the scheduler uses the same ones.
pub struct Ports<S, D> {
    /// The engine with its store, deployer, IAM, clock, step timeout and telemetry.
    pub engine: Arc<Engine<S, D>>,
    /// `[ha]`: per-secret leases (None: one replica without leases).
    pub ha: Option<Arc<Ha>>,
    /// What /healthz, /readyz and the watchdog read (heartbeat, status line, store_ok).
    pub health: Arc<Health>,
    /// The replica skew's source (the lease retry spread is [`Ha::with_random`]'s).
    pub random: Arc<dyn Random>,
    /// Where rotation events go (`[[notify]]` sinks; nowhere by default).
    pub notifier: Arc<dyn Notifier>,
}

impl<S, D> Ports<S, D> {
    /// The ports with the OS's randomness.
    pub fn new(engine: Arc<Engine<S, D>>, ha: Option<Arc<Ha>>, health: Arc<Health>) -> Self {
        Self {
            engine,
            ha,
            health,
            random: Arc::new(OsRandom),
            notifier: Arc::new(NoNotifier),
        }
    }

    /// The same ports, telling rotation events to `notifier`.
    pub fn with_notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = notifier;
        self
    }
}

/// Runs the daemon on `cfg` until `shutdown` completes, then stops starting work and gives
/// rotations in flight `[daemon] shutdown_grace` (what is still running then is stopped
/// where it is; the next start resumes it from the store).
///
/// Each configuration received on `reloads` (already validated) replaces the secrets and
/// `[daemon]` settings at once; a rotation in flight finishes on the configuration it
/// started with. `daemon.listen`, `[aws]` and `[ha]` apply on restart only (a warning
/// says so). A closed `reloads` channel only means no more reloads.
///
/// Readiness is the caller's: the binary sets `health.ready` before telling systemd
/// READY=1 and clears it on SIGTERM, before completing `shutdown`.
///
/// Dropping the returned future stops everything it started at once (rotation tasks
/// included), like a crash, except for due-time reads already sent (they only read).
pub async fn run<S: SecretStore, D: Deployer>(
    cfg: Config,
    ports: Ports<S, D>,
    shutdown: impl Future<Output = ()>,
    mut reloads: mpsc::Receiver<Config>,
) {
    let Ports {
        engine,
        ha,
        health,
        random,
        notifier,
    } = ports;
    let clock = engine.clock.clone();
    // Optimistic until the first read pass says otherwise (READY does not wait for due
    // times: at 100,000 secrets that is minutes of ListSecrets pages).
    health
        .store_ok
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let sched = Scheduler::new(engine, clock, &cfg, health)
        .with_ha(ha)
        .with_random(random)
        .with_notifier(notifier);
    let mut applied = Applied::of(&cfg);
    drop(cfg);
    let (tx, rx) = mpsc::channel(4);
    // The loop and the forwarding run side by side in this future (not spawned), so
    // that dropping it drops the scheduler and its rotation tasks with it.
    let forward = async move {
        tokio::pin!(shutdown);
        let mut open = true;
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                new = reloads.recv(), if open => match new {
                    Some(new) => {
                        let _ = applied.warn_unappliable(&new);
                        if tx.send(Control::Reload(Box::new(new))).await.is_err() {
                            return;
                        }
                    }
                    None => open = false,
                },
            }
        }
        let _ = tx.send(Control::Shutdown).await;
    };
    tokio::join!(sched.run(rx), forward);
}

fn store_clients(cfg: &Config) -> (Option<String>, Option<String>, String) {
    (
        cfg.alibaba.sts_endpoint.clone(),
        cfg.ibm.iam_endpoint.clone(),
        cfg.ibm.api_key_env.clone(),
    )
}

/// What a reload cannot apply, as first loaded: compared with every reload for a warning.
struct Applied {
    daemon: DaemonConfig,
    aws: AwsConfig,
    /// The non-AWS stores' clients: `[alibaba] sts_endpoint`, `[ibm] iam_endpoint` and
    /// `api_key_env` (their other keys are per-secret routes, applied at reload).
    store_clients: (Option<String>, Option<String>, String),
    ha: HaConfig,
    events: EventsConfig,
    notify: Vec<crate::config::NotifyConfig>,
}

impl Applied {
    fn of(cfg: &Config) -> Self {
        Self {
            daemon: cfg.daemon.clone(),
            aws: cfg.aws.clone(),
            store_clients: store_clients(cfg),
            ha: cfg.ha.clone(),
            events: cfg.events.clone(),
            notify: cfg.notify.clone(),
        }
    }

    /// Warns about settings that only a restart applies, and says which; remembers the
    /// new ones (a warning is given once per change). `[ha]` is compared with the first
    /// load: a change there is never applied, so it is said at every reload.
    fn warn_unappliable(&mut self, new: &Config) -> Vec<&'static str> {
        let mut unapplied = Vec::new();
        if self.daemon.listen != new.daemon.listen {
            tracing::warn!(old = %self.daemon.listen, new = %new.daemon.listen, "daemon.listen changes on restart only");
            unapplied.push("daemon.listen");
        }
        if self.aws != new.aws {
            tracing::warn!("[aws] changes apply to new clients on restart only");
            unapplied.push("aws");
        }
        if store_clients(new) != self.store_clients {
            tracing::warn!(
                "[alibaba] sts_endpoint and [ibm] iam_endpoint/api_key_env change on restart only"
            );
            unapplied.push("store clients");
        }
        if new.ha != self.ha {
            tracing::warn!("[ha] changes apply on restart only");
            unapplied.push("ha");
        }
        if new.events != self.events {
            tracing::warn!("[events] changes apply on restart only");
            unapplied.push("events");
        }
        if new.notify != self.notify {
            tracing::warn!(
                "[[notify]] changes apply on restart only (the sinks are built at start)"
            );
            unapplied.push("notify");
        }
        if new.daemon.redeploy_coalesce != self.daemon.redeploy_coalesce {
            tracing::warn!("daemon.redeploy_coalesce changes on restart only");
            unapplied.push("daemon.redeploy_coalesce");
        }
        self.daemon = new.daemon.clone();
        self.aws = new.aws.clone();
        self.store_clients = store_clients(new);
        unapplied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            daemon: DaemonConfig::default(),
            aws: AwsConfig::default(),
            alibaba: Default::default(),
            ibm: Default::default(),
            ha: HaConfig::default(),
            events: EventsConfig::default(),
            secrets: Vec::new(),
            groups: Vec::new(),
            notify: Vec::new(),
            files: Vec::new(),
        }
    }

    #[test]
    fn a_reload_says_which_settings_wait_for_a_restart_once_per_change() {
        let mut applied = Applied::of(&config());
        let mut new = config();
        new.daemon.max_attempts = 3;
        assert!(applied.warn_unappliable(&new).is_empty(), "applied at once");
        new.daemon.listen = "127.0.0.1:1".parse().unwrap();
        new.aws.profile = Some("other".into());
        new.ha.replicas = 2;
        assert_eq!(
            applied.warn_unappliable(&new),
            ["daemon.listen", "aws", "ha"]
        );
        // Said once for listen and [aws]; [ha] stays unapplied until a restart.
        assert_eq!(applied.warn_unappliable(&new), ["ha"]);
    }
}
