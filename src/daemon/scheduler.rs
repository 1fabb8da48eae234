//! The deadline queue: every secret's next due time on tokio time, at most
//! `max_concurrent_rotations` rotations at once, never two of one secret, retries with
//! exponential backoff, reloads that take effect at once, and a graceful drain.
//!
//! A sorted set of (deadline, name) and one `sleep_until` on the earliest: no polling, no
//! wake-ups while nothing is due, O(log n) per change (DESIGN §5 has the measurements).

use crate::clock::Clock;
use crate::config::{Config, DaemonConfig, SecretConfig};
use crate::due::{due_times, DueInfo};
use crate::error::AwsError;
use crate::ids::{SecretName, VersionId};
use crate::metrics;
use crate::rotation::deploy::Deployer;
use crate::rotation::store::SecretStore;
use crate::rotation::{Engine, Outcome, Quiet, Report, RotateOptions, RotationError, Step};
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// State the HTTP endpoints and the watchdog read.
#[derive(Default)]
pub struct Health {
    pub ready: AtomicBool,
    pub store_ok: AtomicBool,
    /// Unix seconds of the scheduler loop's last turn.
    pub heartbeat: AtomicU64,
    pub status: std::sync::Mutex<String>,
}

pub enum Control {
    Reload(Box<Config>),
    Shutdown,
}

struct Entry {
    cfg: Arc<SecretConfig>,
    deadline: Option<Instant>,
    due: Option<DateTime<Utc>>,
    replaces: Option<VersionId>,
    /// The due time is unknown (the store could not be read): find it before rotating.
    needs_due: bool,
    failures: u32,
    /// The last failure was the target refusing the value: the retry makes a new one.
    fresh_next: bool,
    gave_up: bool,
    running: bool,
    /// A reload changed the config while a rotation ran: apply after it.
    next_cfg: Option<Arc<SecretConfig>>,
    removed: bool,
}

enum Done {
    Due(SecretName, Result<DueInfo, AwsError>),
    Rotated(SecretName, Result<Report, RotationError>, Instant),
}

pub struct Scheduler<S, D> {
    engine: Arc<Engine<S, D>>,
    clock: Arc<dyn Clock>,
    settings: DaemonConfig,
    entries: HashMap<SecretName, Entry>,
    queue: BTreeSet<(Instant, SecretName)>,
    waiting: VecDeque<SecretName>,
    tasks: JoinSet<Done>,
    health: Arc<Health>,
    status_at: Option<Instant>,
}

const STATUS_EVERY: Duration = Duration::from_secs(5);

fn ts(t: DateTime<Utc>) -> f64 {
    t.timestamp() as f64
}

impl<S: SecretStore, D: Deployer> Scheduler<S, D> {
    pub fn new(
        engine: Arc<Engine<S, D>>,
        clock: Arc<dyn Clock>,
        cfg: &Config,
        health: Arc<Health>,
    ) -> Self {
        let mut s = Self {
            engine,
            clock,
            settings: cfg.daemon.clone(),
            entries: HashMap::new(),
            queue: BTreeSet::new(),
            waiting: VecDeque::new(),
            tasks: JoinSet::new(),
            health,
            status_at: None,
        };
        for c in &cfg.secrets {
            s.entries
                .insert(c.name.clone(), Entry::new(Arc::new(c.clone())));
        }
        metrics::get()
            .secrets_configured
            .set(cfg.secrets.len() as i64);
        s
    }

    /// Reads every due time from the store (one batched pass). Called before READY.
    pub async fn load_due_times(&mut self) {
        let names: Vec<SecretName> = self
            .entries
            .iter()
            .filter(|(_, e)| !e.running)
            .map(|(n, _)| n.clone())
            .collect();
        self.compute_due(&names).await;
    }

    async fn compute_due(&mut self, names: &[SecretName]) {
        let cfgs: Vec<Arc<SecretConfig>> = names
            .iter()
            .filter_map(|n| self.entries.get(n).map(|e| e.cfg.clone()))
            .collect();
        let refs: Vec<&SecretConfig> = cfgs.iter().map(|c| c.as_ref()).collect();
        let now = self.clock.now();
        let results = due_times(&self.engine.store, &refs, now).await;
        let mut ok = 0usize;
        for (cfg, r) in cfgs.iter().zip(results) {
            ok += usize::from(r.is_ok());
            self.apply_due(&cfg.name, r);
        }
        self.health
            .store_ok
            .store(ok > 0 || cfgs.is_empty(), Ordering::Relaxed);
    }

    fn apply_due(&mut self, name: &SecretName, r: Result<DueInfo, AwsError>) {
        let now = self.clock.now();
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        let m = metrics::get();
        match r {
            Ok(d) => {
                e.needs_due = false;
                e.due = Some(d.due);
                e.replaces = d.current;
                m.secrets.update(name.as_str(), |s| {
                    s.next_due = ts(d.due);
                    s.last_success = d.last_rotated.map_or(0.0, ts);
                });
                if !e.gave_up && e.failures == 0 {
                    let wait = (d.due - now).to_std().unwrap_or(Duration::ZERO)
                        + replica_skew(e.cfg.every);
                    Self::schedule(&mut self.queue, name, e, Instant::now() + wait);
                }
                tracing::debug!(secret = %name, due = %d.due, "due time");
            }
            Err(err) => {
                tracing::warn!(secret = %name, error = %err, "cannot read the secret's due time; will retry");
                e.needs_due = true;
                let delay = backoff(&self.settings, e.failures.max(1));
                Self::schedule(&mut self.queue, name, e, Instant::now() + delay);
            }
        }
    }

    fn schedule(
        queue: &mut BTreeSet<(Instant, SecretName)>,
        name: &SecretName,
        e: &mut Entry,
        at: Instant,
    ) {
        if let Some(old) = e.deadline.take() {
            queue.remove(&(old, name.clone()));
        }
        e.deadline = Some(at);
        queue.insert((at, name.clone()));
    }

    fn unschedule(queue: &mut BTreeSet<(Instant, SecretName)>, name: &SecretName, e: &mut Entry) {
        if let Some(old) = e.deadline.take() {
            queue.remove(&(old, name.clone()));
        }
    }

    /// Runs until `Control::Shutdown` (or the control channel closes), then drains.
    pub async fn run(mut self, mut control: mpsc::Receiver<Control>) {
        let mut refresh = tokio::time::interval_at(
            Instant::now() + self.settings.refresh,
            self.settings.refresh,
        );
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.beat();
            let next = self.queue.first().map(|(at, _)| *at);
            tokio::select! {
                _ = sleep_until_opt(next) => self.fire(),
                Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    match done {
                        Ok(d) => self.finished(d).await,
                        Err(e) => tracing::error!(error = %e, "a rotation task panicked"),
                    }
                }
                ctl = control.recv() => match ctl {
                    Some(Control::Reload(cfg)) => self.reload(*cfg).await,
                    Some(Control::Shutdown) | None => break,
                },
                _ = refresh.tick() => {
                    let idle: Vec<SecretName> = self.entries.iter()
                        .filter(|(_, e)| !e.running && e.failures == 0 && !e.needs_due)
                        .map(|(n, _)| n.clone()).collect();
                    self.compute_due(&idle).await;
                }
            }
            self.launch();
        }
        self.drain().await;
    }

    fn beat(&mut self) {
        let now = self.clock.now().timestamp().max(0) as u64;
        self.health.heartbeat.store(now, Ordering::Relaxed);
        // The status line scans every entry: at most every few seconds, not per event.
        if self.status_at.is_some_and(|t| t.elapsed() < STATUS_EVERY) {
            return;
        }
        self.status_at = Some(Instant::now());
        let failing = self.entries.values().filter(|e| e.failures > 0).count();
        let next = self.queue.iter().find_map(|(_, n)| {
            self.entries
                .get(n)
                .filter(|e| !e.needs_due)
                .and_then(|e| e.due.map(|d| (n, d)))
        });
        let status = match next {
            Some((n, d)) => format!(
                "{} secrets, {} rotating, {failing} failing; next due: {n} at {}",
                self.entries.len(),
                self.tasks.len(),
                d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            None => format!(
                "{} secrets, {} rotating, {failing} failing",
                self.entries.len(),
                self.tasks.len()
            ),
        };
        if let Ok(mut s) = self.health.status.lock() {
            *s = status;
        }
    }

    /// Moves every entry whose deadline has passed to the waiting line.
    fn fire(&mut self) {
        let now = Instant::now();
        while let Some((at, name)) = self.queue.first().cloned() {
            if at > now {
                break;
            }
            self.queue.remove(&(at, name.clone()));
            if let Some(e) = self.entries.get_mut(&name) {
                e.deadline = None;
                if !e.running {
                    self.waiting.push_back(name);
                }
            }
        }
    }

    /// Starts waiting work while slots are free.
    fn launch(&mut self) {
        while self.tasks.len() < self.settings.max_concurrent_rotations {
            let Some(name) = self.waiting.pop_front() else {
                break;
            };
            let Some(e) = self.entries.get_mut(&name) else {
                continue;
            };
            if e.running || e.removed {
                continue;
            }
            e.running = true;
            let cfg = e.cfg.clone();
            let engine = self.engine.clone();
            if e.needs_due {
                self.tasks.spawn(async move {
                    let r = due_times(&engine.store, &[cfg.as_ref()], engine.clock.now())
                        .await
                        .pop();
                    let r = r.unwrap_or_else(|| {
                        Err(AwsError::new(
                            crate::error::ErrorClass::Other,
                            "DescribeSecret",
                            "NoResult",
                            "no result",
                        ))
                    });
                    Done::Due(cfg.name.clone(), r)
                });
                continue;
            }
            let opts = RotateOptions {
                fresh: e.fresh_next,
                dry_run: false,
                replaces: e.replaces.clone(),
            };
            let m = metrics::get();
            let now = ts(self.clock.now());
            m.secrets.update(name.as_str(), |s| {
                s.in_progress = true;
                s.started = now;
            });
            m.in_progress_total.inc();
            tracing::info!(secret = %name, attempt = e.failures + 1, "rotation due; starting");
            self.tasks.spawn(async move {
                let started = Instant::now();
                let r = engine.rotate(&cfg, opts, &Quiet).await;
                Done::Rotated(cfg.name.clone(), r, started)
            });
        }
    }

    async fn finished(&mut self, done: Done) {
        match done {
            Done::Due(name, r) => {
                if let Some(e) = self.entries.get_mut(&name) {
                    e.running = false;
                }
                if self.take_removed(&name) {
                    return;
                }
                self.apply_due(&name, r);
            }
            Done::Rotated(name, r, started) => {
                let m = metrics::get();
                m.secrets.update(name.as_str(), |s| s.in_progress = false);
                m.in_progress_total.dec();
                if let Some(e) = self.entries.get_mut(&name) {
                    e.running = false;
                }
                let secs = started.elapsed().as_secs_f64();
                let outcome = match &r {
                    Ok(rep) => rep.outcome,
                    Err(e) => e.outcome(),
                };
                if outcome != Outcome::AlreadyRotated {
                    m.rotations
                        .with_label_values(&[name.as_str(), outcome.label()])
                        .inc();
                    m.rotation_duration
                        .with_label_values(&[outcome.label()])
                        .observe(secs);
                }
                if self.take_removed(&name) {
                    return;
                }
                match r {
                    Ok(rep) => {
                        tracing::info!(secret = %name, outcome = outcome.label(), version = rep.version.as_ref().map(|v| v.as_str()).unwrap_or("-"), "rotation finished");
                        if let Some(e) = self.entries.get_mut(&name) {
                            e.failures = 0;
                            e.fresh_next = false;
                            e.gave_up = false;
                        }
                        m.secrets.update(name.as_str(), |s| {
                            s.failures = 0;
                            s.failing = false;
                        });
                        self.apply_next_cfg(&name);
                        // Reading the new due time is a store call: run it as a task like a
                        // rotation, so the loop never waits on AWS between two launches.
                        if let Some(e) = self.entries.get_mut(&name) {
                            e.needs_due = true;
                        }
                        self.waiting.push_back(name);
                    }
                    Err(err) => self.failed(&name, &err),
                }
            }
        }
    }

    fn failed(&mut self, name: &SecretName, err: &RotationError) {
        let m = metrics::get();
        let max = self.settings.max_attempts;
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        e.failures += 1;
        // Only a value the target refused is replaced; any other failure resumes the same
        // pending value (which may be another replica's rotation in flight).
        e.fresh_next = matches!(
            err,
            RotationError::Target {
                step: Step::Set | Step::Test,
                ..
            }
        );
        let failures = e.failures;
        m.secrets.update(name.as_str(), |s| {
            s.failures = failures;
            s.failing = true;
        });
        if e.failures >= max {
            e.gave_up = true;
            tracing::error!(secret = %name, failures = e.failures, error = %err, "rotation failed; giving up until the next reload or a manual rotation");
            return;
        }
        let delay = backoff(&self.settings, e.failures);
        tracing::error!(secret = %name, failures = e.failures, retry_in_seconds = delay.as_secs(), error = %err, "rotation failed; will retry");
        let cfg = e.next_cfg.take();
        if let Some(c) = cfg {
            e.cfg = c;
        }
        Self::schedule(&mut self.queue, name, e, Instant::now() + delay);
    }

    fn apply_next_cfg(&mut self, name: &SecretName) {
        if let Some(e) = self.entries.get_mut(name) {
            if let Some(c) = e.next_cfg.take() {
                e.cfg = c;
            }
        }
    }

    /// Drops an entry that a reload removed while it was running.
    fn take_removed(&mut self, name: &SecretName) -> bool {
        if self.entries.get(name).is_some_and(|e| e.removed) {
            self.entries.remove(name);
            metrics::get().forget_secret(name.as_str());
            return true;
        }
        false
    }

    /// Applies a new (already validated) configuration. Failure counts reset: a reload is
    /// how an operator says "try again".
    async fn reload(&mut self, cfg: Config) {
        self.settings = cfg.daemon.clone();
        let mut recompute = Vec::new();
        let new_names: BTreeSet<&SecretName> = cfg.secrets.iter().map(|s| &s.name).collect();
        let old: Vec<SecretName> = self.entries.keys().cloned().collect();
        for name in old {
            if !new_names.contains(&name) {
                if let Some(mut e) = self.entries.remove(&name) {
                    Self::unschedule(&mut self.queue, &name, &mut e);
                    if e.running {
                        e.removed = true;
                        self.entries.insert(name, e);
                    } else {
                        metrics::get().forget_secret(name.as_str());
                    }
                }
            }
        }
        self.waiting.retain(|n| new_names.contains(n));
        for c in cfg.secrets {
            let name = c.name.clone();
            let c = Arc::new(c);
            match self.entries.get_mut(&name) {
                Some(e) if e.running => e.next_cfg = Some(c),
                Some(e) => {
                    e.cfg = c;
                    e.failures = 0;
                    e.fresh_next = false;
                    e.gave_up = false;
                    metrics::get().secrets.update(name.as_str(), |s| {
                        s.failures = 0;
                        s.failing = false;
                    });
                    recompute.push(name);
                }
                None => {
                    self.entries.insert(name.clone(), Entry::new(c));
                    recompute.push(name);
                }
            }
        }
        metrics::get()
            .secrets_configured
            .set(self.entries.values().filter(|e| !e.removed).count() as i64);
        self.compute_due(&recompute).await;
        tracing::info!(secrets = self.entries.len(), "configuration reloaded");
    }

    /// Stops starting work and gives in-flight rotations the grace period; what is still
    /// running then is stopped where it is, which the next start resumes from the store.
    async fn drain(mut self) {
        let grace = self.settings.shutdown_grace;
        if !self.tasks.is_empty() {
            tracing::info!(
                running = self.tasks.len(),
                grace_seconds = grace.as_secs(),
                "stopping: waiting for rotations in flight"
            );
        }
        let deadline = Instant::now() + grace;
        while !self.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(Ok(d))) => self.finished(d).await,
                Ok(Some(Err(_))) | Ok(None) => {}
                Err(_) => {
                    tracing::warn!(running = self.tasks.len(), "grace period over: stopping rotations in flight; the next start resumes them");
                    self.tasks.abort_all();
                    break;
                }
            }
        }
    }
}

impl Entry {
    fn new(cfg: Arc<SecretConfig>) -> Self {
        Self {
            cfg,
            deadline: None,
            due: None,
            replaces: None,
            needs_due: true,
            failures: 0,
            fresh_next: false,
            gave_up: false,
            running: false,
            next_cfg: None,
            removed: false,
        }
    }
}

/// A small random delay per process, so replicas that computed the same due time do not
/// start the same rotation at the same instant (the later one then finds it done, or joins
/// it). At most 5 s, and at most 1/20 of the interval.
fn replica_skew(every: Duration) -> Duration {
    let cap = Duration::from_secs(5).min(every / 20);
    let mut b = [0u8; 4];
    if getrandom::fill(&mut b).is_err() || cap.is_zero() {
        return Duration::ZERO;
    }
    cap.mul_f64(f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX))
}

/// Retry delay after `failures` failures: initial, doubling, capped.
pub fn backoff(s: &DaemonConfig, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    s.retry_initial.saturating_mul(1u32 << exp).min(s.retry_max)
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        let s = DaemonConfig::default();
        assert_eq!(backoff(&s, 1), Duration::from_secs(60));
        assert_eq!(backoff(&s, 2), Duration::from_secs(120));
        assert_eq!(backoff(&s, 7), Duration::from_secs(3600));
        assert_eq!(backoff(&s, 40), Duration::from_secs(3600));
    }
}
